fn main() {
    eprintln!("bpfvm: no subcommands yet");
    std::process::exit(2);
}
