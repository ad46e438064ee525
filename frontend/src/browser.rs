//! Small wrappers over browser APIs: clock, random client ids, local time formatting.
//!
//! Kept apart so that the pure modules stay free of `js_sys`/`web_sys` calls.

use shared::ClientId;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};

/// Milliseconds since the Unix epoch, from the browser clock.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// A fresh client id for an outgoing message: `crypto.randomUUID()` where the page is a secure
/// context (https or localhost), else 128 random bits from `crypto.getRandomValues`, else from
/// `Math.random` (only in ancient browsers).
pub fn new_client_id() -> ClientId {
    let crypto = web_sys::window().and_then(|w| w.crypto().ok());
    if let Some(crypto) = &crypto {
        // randomUUID exists only in secure contexts; calling a missing method would throw.
        let has_uuid = js_sys::Reflect::has(crypto.as_ref(), &JsValue::from_str("randomUUID"))
            .unwrap_or(false);
        if has_uuid && let Ok(id) = ClientId::parse(crypto.random_uuid()) {
            return id;
        }
        let mut bytes = [0u8; 16];
        if crypto.get_random_values_with_u8_array(&mut bytes).is_ok() {
            return hex_id(&bytes);
        }
    }
    let mut bytes = [0u8; 16];
    for b in &mut bytes {
        *b = (js_sys::Math::random() * 256.0) as u8;
    }
    hex_id(&bytes)
}

/// A client id of lower-case hex digits.
pub fn hex_id(bytes: &[u8]) -> ClientId {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    // Hex digits are valid client id characters and 16 bytes make 32 of them (limit 64).
    ClientId::parse(if hex.is_empty() { "0".to_owned() } else { hex })
        .expect("hex digits form a valid client id")
}

/// A message time as the list shows it, in the browser's local time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// `HH:MM` today, `YYYY-MM-DD HH:MM` on another day.
    pub short: String,
    /// The locale's full date and time (tooltip).
    pub full: String,
    /// ISO 8601 in UTC (the `datetime` attribute).
    pub iso: String,
}

/// Formats `ts` (ms since the Unix epoch) in local time; `now` decides whether it is today.
pub fn local_time(ts: i64, now: i64) -> LocalTime {
    let date = js_sys::Date::new(&JsValue::from_f64(ts as f64));
    let today = js_sys::Date::new(&JsValue::from_f64(now as f64));
    let hm = format!("{:02}:{:02}", date.get_hours(), date.get_minutes());
    let same_day = date.get_full_year() == today.get_full_year()
        && date.get_month() == today.get_month()
        && date.get_date() == today.get_date();
    let short = if same_day {
        hm
    } else {
        format!(
            "{}-{:02}-{:02} {hm}",
            date.get_full_year(),
            date.get_month() + 1,
            date.get_date()
        )
    };
    let full = String::from(date.to_locale_string("default", &JsValue::UNDEFINED));
    // toISOString throws on an invalid date; the server's timestamps are valid, but stay safe.
    let iso = if date.get_time().is_nan() {
        String::new()
    } else {
        String::from(date.to_iso_string())
    };
    LocalTime { short, full, iso }
}

/// Whether the page is hidden (another tab, minimised).
pub fn hidden() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .is_some_and(|d| d.hidden())
}

/// The browser's notification permission: `granted`, `denied`, `default` (not asked yet), or
/// `unsupported`.
pub fn notify_permission() -> &'static str {
    if !js_sys::Reflect::has(&js_sys::global(), &JsValue::from_str("Notification")).unwrap_or(false)
    {
        return "unsupported";
    }
    match web_sys::Notification::permission() {
        web_sys::NotificationPermission::Granted => "granted",
        web_sys::NotificationPermission::Denied => "denied",
        _ => "default",
    }
}

/// Asks for the permission to notify (call it from a click only); `done` runs with the answer.
pub fn ask_notify(done: impl FnOnce() + 'static) {
    if let Ok(p) = web_sys::Notification::request_permission() {
        wasm_bindgen_futures::spawn_local(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(p).await;
            done();
        });
    }
}

/// Shows a notification while the page is hidden, if allowed.
pub fn notify(title: &str, body: &str) {
    if !hidden() || notify_permission() != "granted" {
        return;
    }
    let opts = web_sys::NotificationOptions::new();
    opts.set_body(body);
    let _ = web_sys::Notification::new_with_options(title, &opts);
}

/// Registers the service worker (`/sw.js`, see `frontend/assets/sw.js`) that keeps the app
/// openable without the network. Where service workers are unavailable (an insecure origin,
/// an old browser) the app works as before, online only.
pub fn register_service_worker() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let navigator = window.navigator();
    let Ok(container) = js_sys::Reflect::get(&navigator, &JsValue::from_str("serviceWorker"))
    else {
        return;
    };
    if container.is_undefined() {
        return;
    }
    let register = js_sys::Reflect::get(&container, &JsValue::from_str("register"))
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok());
    if let Some(register) = register
        && let Ok(promise) = register.call1(&container, &JsValue::from_str("/sw.js"))
        && let Ok(promise) = promise.dyn_into::<js_sys::Promise>()
    {
        // A refusal (e.g. the file is missing in a development build) is not the app's problem.
        let ignore = Closure::once(|_: JsValue| {});
        let _ = promise.catch(&ignore);
        ignore.forget();
    }
}
