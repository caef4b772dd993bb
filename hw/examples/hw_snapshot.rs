//! Copy the files machine discovery reads into a directory, to tar and send, or to keep as a test fixture:
//! `cargo run -p weir-hw --example hw_snapshot -- [--root /] OUT`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut root = PathBuf::from("/");
    if let Some(i) = args.iter().position(|a| a == "--root") {
        if i + 1 >= args.len() {
            eprintln!("--root needs a directory");
            return ExitCode::from(2);
        }
        root = PathBuf::from(args.remove(i + 1));
        args.remove(i);
    }
    let [out] = args.as_slice() else {
        eprintln!("usage: hw_snapshot [--root DIR] OUT");
        return ExitCode::from(2);
    };
    match weir_hw::snapshot(&root, out.as_ref()) {
        Ok(n) => {
            println!("{n} files and links from {} written to {out}", root.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("snapshot: {e}");
            ExitCode::FAILURE
        }
    }
}
