//! Link settings of the module's shared object.

fn main() {
    // dlclose() must never unmap the module. Threads that called into it carry thread-local
    // destructors (Rust's standard library and AWS-LC register them) that point into its code and
    // run when those threads exit; after a host unloads the module (p11-kit, Java, a test harness)
    // they would jump into unmapped memory. NODELETE keeps the code mapped; a later dlopen()
    // reuses it.
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(
        os.as_str(),
        "linux" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "solaris" | "illumos"
    ) {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
