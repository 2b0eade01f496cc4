//! Checks that the README's support section is what `bpfvm support` generates from the helper
//! registry and the map types (`BPFVM_BLESS=1` rewrites it), and that the command prints it.

use assert_cmd::Command;

const BEGIN: &str = "<!-- support:begin -->\n";
const END: &str = "<!-- support:end -->";

fn readme_path() -> String {
    format!("{}/../README.md", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_readme_support_section_is_generated() {
    let path = readme_path();
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme.find(BEGIN).expect("README has the begin marker") + BEGIN.len();
    let end = readme.find(END).expect("README has the end marker");
    let generated = bpfvm::support::markdown();
    if readme[start..end] != generated {
        if std::env::var_os("BPFVM_BLESS").is_some() {
            let updated = format!("{}{}{}", &readme[..start], generated, &readme[end..]);
            std::fs::write(&path, updated).unwrap();
            return;
        }
        panic!("the README's support section is out of date: run BPFVM_BLESS=1 cargo test -p bpfvm --test readme_support");
    }
}

#[test]
fn bpfvm_support_prints_the_tables() {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfvm"))
        .arg("support")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        bpfvm::support::markdown()
    );
}
