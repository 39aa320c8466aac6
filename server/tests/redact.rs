//! `awoooi redact`, run as a user runs it: the binary, a config file, standard input (no
//! server, nothing stored).

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// `awoooi redact` with one configured detector, `pod`, of `pattern`, on `input`.
fn redact(pattern: &str, input: &str) -> Output {
    let path = std::env::temp_dir().join(format!("awoooi-redact-{}.toml", rand::random::<u64>()));
    let config =
        format!("[[shield.detectors]]\nname = \"pod\"\npattern = '{pattern}'\nlabel = \"POD\"\n");
    std::fs::write(&path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_awoooi"))
        .arg("redact")
        .arg("--config")
        .arg(&path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&path);
    output
}

/// Standard input comes out labelled, one label per value across lines, with the config
/// file's own detectors after the built-in ones.
#[test]
fn redact_labels_stdin_with_builtin_and_configured_detectors() {
    let input = "pod checkout-1a2b3c4d on 10.0.0.7 password=hunter22\n\
                 retry checkout-1a2b3c4d from 10.0.0.7 by bob@example.com\n\
                 no newline at the end 10.0.0.8";
    let out = redact(r"\bcheckout-[a-f0-9]{8}\b", input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "pod [POD_1] on [IP_1] password=[PASSWORD_1]\n\
         retry [POD_1] from [IP_1] by [EMAIL_1]\n\
         no newline at the end [IP_2]"
    );
}

/// A detector that does not compile stops the command before it reads anything: the error
/// names the detector, and nothing is written to standard output.
#[test]
fn redact_refuses_a_detector_that_does_not_compile() {
    let out = redact("checkout-([", "10.0.0.7\n");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("detector `pod`: invalid pattern"),
        "{stderr}"
    );
}
