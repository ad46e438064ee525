//! The views, cut by screen area. Leaf components take what they show as props (signals) and
//! report user actions through callbacks, so component tests can mount them alone; the
//! containers ([`ChatLayout`], [`Sidebar`]) take the [`crate::client::Client`] from context.
//!
//! Every element an end-to-end test drives carries a `data-testid`; each component module's
//! docs list the ids it renders.

mod app;
mod auth;
mod badge;
mod composer;
mod layout;
mod members;
mod messages;
mod people;
mod sidebar;

pub use app::App;
pub use auth::{AuthForm, AuthMode};
pub use badge::ConnBadge;
pub use composer::Composer;
pub use layout::{ChatLayout, ChatPage};
pub use members::MemberPanel;
pub use messages::{EntryRow, MessageList};
pub use people::PeoplePicker;
pub use sidebar::{InviteList, NewRoomForm, OnlineList, RoomList, RoomRow, Sidebar, room_rows};
