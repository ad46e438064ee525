//! Entry point of the browser bundle: mounts [`frontend::App`] into `<body>`.

fn main() {
    console_error_panic_hook::set_once();
    frontend::i18n::init();
    frontend::components::apply_theme(frontend::components::stored_theme());
    frontend::browser::register_service_worker();
    leptos::mount::mount_to_body(frontend::App);
}
