#![recursion_limit = "256"]
//! Hydrates the server-rendered page's islands (`#[island]` components in `app`); everything
//! else on the page stays the server's HTML.

// Linked for its islands: each one is a `wasm_bindgen` export the hydration script calls.
#[allow(unused_imports)]
use app as _;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
