//! The bpfvm command line (no subcommands yet; the library API is the interface).
fn main() {
    eprintln!("bpfvm: no subcommands yet");
    std::process::exit(2);
}
