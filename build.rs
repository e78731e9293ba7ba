//! Build-time settings cargo cannot express in `Cargo.toml`:
//! - rebuild when a migration is added or changed (`sqlx::migrate!` embeds `migrations/`
//!   at compile time, and cargo does not watch it by itself);
//! - link the binaries with packed relative relocations (`-z pack-relative-relocs`, DT_RELR)
//!   where the linker and the C library support them: the position-independent binary's
//!   1.2 MB table of relative relocations, which the loader reads whole at every start and
//!   which stays resident, shrinks to a few kilobytes. Checked by linking and running a
//!   probe, so an older toolchain or glibc (before 2.36) builds without it.

use std::path::Path;
use std::process::Command;

const RELR: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=CC");
    if linux_gnu_native() && links_and_runs_with(RELR) {
        println!("cargo:rustc-link-arg-bins={RELR}");
    }
}

/// A native build for Linux with glibc (a probe built here can run here).
fn linux_gnu_native() -> bool {
    let var = |name| std::env::var(name).unwrap_or_default();
    var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && var("TARGET") == var("HOST")
}

/// Whether the C compiler rustc links with accepts `flag` for a position-independent
/// executable, and the result runs.
fn links_and_runs_with(flag: &str) -> bool {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let source = Path::new(&out).join("relr_probe.c");
    let probe = Path::new(&out).join("relr_probe");
    let program =
        "static const char *s[] = {\"a\", \"b\"}; int main(void) { return s[1][0] != 'b'; }";
    if std::fs::write(&source, program).is_err() {
        return false;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(cc)
        .args(["-pie", "-fPIE", flag, "-o"])
        .arg(&probe)
        .arg(&source)
        .output()
        .is_ok_and(|o| o.status.success());
    built && Command::new(&probe).status().is_ok_and(|s| s.success())
}
