//! Build-time settings cargo cannot express in `Cargo.toml`:
//! - rebuild when a migration is added or changed (`sqlx::migrate!` embeds `migrations/`
//!   at compile time, and cargo does not watch it by itself);
//! - link the binaries with packed relative relocations (`-z pack-relative-relocs`, DT_RELR)
//!   where the linker and the C library support them: the position-independent binary's
//!   1.2 MB table of relative relocations, which the loader reads whole at every start and
//!   which stays resident, shrinks to a few kilobytes. Checked by linking and running a
//!   probe, so an older toolchain or glibc (before 2.36) builds without it;
//! - in release builds linked by LLD (rustc's default on x86_64 Linux), place the functions
//!   a server runs first in `.text`, in the order `build/text-order.txt` lists them (made by
//!   `scripts/text-order`): the kernel maps the 64 kB around each page a process touches, so
//!   4 MB of code spread over 22 MB kept 14 MB resident; packed together, under 5 MB.

use std::path::Path;
use std::process::Command;

const RELR: &str = "-Wl,-z,pack-relative-relocs";

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed=CC");
    if linux_gnu_native() && links_and_runs_with(RELR) {
        println!("cargo:rustc-link-arg-bins={RELR}");
    }
    println!("cargo:rerun-if-changed={TEXT_ORDER}");
    let order = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(TEXT_ORDER);
    if std::env::var("PROFILE").is_ok_and(|p| p == "release") && rustc_links_with_order(&order) {
        for arg in ordering_args(&order) {
            println!("cargo:rustc-link-arg-bins={arg}");
        }
    }
}

/// The functions a server runs, listed by `scripts/text-order` (see its header).
const TEXT_ORDER: &str = "build/text-order.txt";

/// Linker arguments that place the listed functions first in `.text`, in the listed order.
/// Names the list no longer matches (code changed since it was made) are skipped quietly.
fn ordering_args(order: &Path) -> [String; 2] {
    [
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".into(),
    ]
}

/// Whether rustc's linker takes a symbol ordering file: LLD does (rustc links with its own
/// LLD on x86_64 Linux since 1.90), GNU ld does not. Checked by linking an empty program with
/// the same flags.
fn rustc_links_with_order(order: &Path) -> bool {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let source = Path::new(&out).join("order_probe.rs");
    if !order.exists() || std::fs::write(&source, "fn main() {}").is_err() {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mut probe = Command::new(rustc);
    probe
        .args(flags.split('\x1f').filter(|f| !f.is_empty()))
        .args(["--target", &std::env::var("TARGET").unwrap_or_default()])
        .arg("-o")
        .arg(Path::new(&out).join("order_probe"))
        .arg(&source);
    for arg in ordering_args(order) {
        probe.arg(format!("-Clink-arg={arg}"));
    }
    probe.output().is_ok_and(|o| o.status.success())
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
