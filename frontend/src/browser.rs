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
    // (Not `expect`: that would compile the error's `Debug` into the bundle.)
    let Ok(id) = ClientId::parse(if hex.is_empty() { "0".to_owned() } else { hex }) else {
        unreachable!("hex digits form a valid client id")
    };
    id
}

/// A message time as the list shows it, in the browser's local time zone and the page's
/// language (formatted by the browser's `Intl`, so no locale data ships in the bundle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    /// The time today ("2:05 PM", "14:05"), "Yesterday 2:05 PM" / "昨天 14:05", or the date
    /// and time on another day.
    pub short: String,
    /// The full date and time (tooltip).
    pub full: String,
    /// ISO 8601 in UTC (the `datetime` attribute).
    pub iso: String,
}

/// An `Intl` options object from pairs of names and values.
fn intl_options(pairs: &[(&str, &str)]) -> JsValue {
    let o = js_sys::Object::new();
    for (k, v) in pairs {
        let _ = js_sys::Reflect::set(&o, &JsValue::from_str(k), &JsValue::from_str(v));
    }
    o.into()
}

/// The local calendar day of a time, as a number that orders days (year, month, day).
pub fn local_day(ts: i64) -> i64 {
    let d = js_sys::Date::new(&JsValue::from_f64(ts as f64));
    i64::from(d.get_full_year()) * 10_000 + i64::from(d.get_month()) * 100 + i64::from(d.get_date())
}

/// Whether `ts` falls on the day before `now`'s (local time).
fn is_yesterday(ts: i64, now: i64) -> bool {
    let day = js_sys::Date::new(&JsValue::from_f64(now as f64));
    day.set_date(day.get_date() - 1);
    local_day(ts) == local_day(day.get_time() as i64)
}

/// A day as the timeline's divider says it: "Today", "Yesterday", or the date ("Thursday,
/// November 26", with the year when it is not this year's), in the page's language.
pub fn day_label(ts: i64, now: i64) -> String {
    let t = crate::i18n::t();
    if local_day(ts) == local_day(now) {
        return t.today.to_owned();
    }
    if is_yesterday(ts, now) {
        return t.yesterday.to_owned();
    }
    let date = js_sys::Date::new(&JsValue::from_f64(ts as f64));
    let this_year = js_sys::Date::new(&JsValue::from_f64(now as f64)).get_full_year();
    let mut opts = vec![("weekday", "long"), ("month", "long"), ("day", "numeric")];
    if date.get_full_year() != this_year {
        opts.push(("year", "numeric"));
    }
    let tag = crate::i18n::lang().tag();
    String::from(date.to_locale_date_string(tag, &intl_options(&opts)))
}

/// The start of a local calendar day given as `YYYY-MM-DD` (what a date field holds), `days`
/// later, in ms since the Unix epoch; `None` for anything else.
pub fn local_day_start(date: &str, days: u32) -> Option<i64> {
    let mut parts = date.trim().splitn(3, '-');
    let y: u32 = parts.next()?.parse().ok()?;
    let m: i32 = parts.next()?.parse().ok()?;
    let d: i32 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let start = js_sys::Date::new_with_year_month_day(y, m - 1, d + i32::try_from(days).ok()?);
    let ms = start.get_time();
    (!ms.is_nan()).then_some(ms as i64)
}

/// Formats `ts` (ms since the Unix epoch) in local time; `now` decides whether it is today.
pub fn local_time(ts: i64, now: i64) -> LocalTime {
    let date = js_sys::Date::new(&JsValue::from_f64(ts as f64));
    let tag = crate::i18n::lang().tag();
    let hm = String::from(date.to_locale_time_string_with_options(
        tag,
        &intl_options(&[("hour", "numeric"), ("minute", "2-digit")]),
    ));
    let short = if local_day(ts) == local_day(now) {
        hm
    } else if is_yesterday(ts, now) {
        format!("{} {hm}", crate::i18n::t().yesterday)
    } else {
        let this_year = js_sys::Date::new(&JsValue::from_f64(now as f64)).get_full_year();
        let mut opts = vec![("month", "short"), ("day", "numeric")];
        if date.get_full_year() != this_year {
            opts.push(("year", "numeric"));
        }
        let day = String::from(date.to_locale_date_string(tag, &intl_options(&opts)));
        format!("{day} {hm}")
    };
    let full = String::from(date.to_locale_string(
        tag,
        &intl_options(&[("dateStyle", "full"), ("timeStyle", "short")]),
    ));
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
