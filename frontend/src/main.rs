//! Entry point of the browser bundle: mounts [`frontend::App`] into `<body>`.

fn main() {
    // A panic's message and place go to the browser's console (without a hook they would go
    // to a stderr that wasm does not have). Only the message: a JavaScript stack trace would
    // cost the bundle more than it tells (the Rust frames in it have no names).
    std::panic::set_hook(Box::new(|info| {
        leptos::logging::error!("{info}");
    }));
    frontend::i18n::init();
    frontend::components::apply_theme(frontend::components::stored_theme());
    frontend::browser::register_service_worker();
    leptos::mount::mount_to_body(frontend::App);
}
