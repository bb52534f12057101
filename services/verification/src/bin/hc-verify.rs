//! `hc-verify`: checks a code offline, for checkpoint devices without a network, against a trust list file (as
//! `GET /v1/trust/list` serves it) whose signature is checked against the pinned root key first.
//!
//! ```text
//! hc-verify --trust-list trust.json --root 440100=kid:base64url-key [--at UNIX] CODE
//! ```
//! Prints one JSON line: `{"valid": true, "issuer": …, "colour": …, …}` or `{"valid": false, "reason": …}`.
//! Exit status: 0 valid, 1 refused, 2 usage or an unusable trust list. The colour is what the code says: offline,
//! nothing newer is known.
//!
//! ```text
//! hc-verify dcc-testcase FILE...
//! ```
//! Runs EU DCC test cases (the dgc-testdata format): one JSON line per file with every step's expected and actual
//! result. Exit status: 0 when every expected result is reproduced (or is a listed error of the data), 1 when one is
//! not, 2 when a file cannot be read as a test case.

use std::process::ExitCode;

use hc_token::{SignedTrustList, Validation};
use serde_json::json;

const USAGE: &str = "usage: hc-verify --trust-list FILE --root REGION=KID:BASE64URL-KEY [--at UNIX-SECONDS] [--leeway SECONDS] CODE";

struct Args {
    trust_list: String,
    root: String,
    at: Option<i64>,
    leeway: i64,
    code: String,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut trust_list, mut root, mut at, mut leeway, mut code) = (None, None, None, 30, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--trust-list" => trust_list = Some(value("--trust-list")?),
            "--root" => root = Some(value("--root")?),
            "--at" => {
                at = Some(
                    value("--at")?
                        .parse()
                        .map_err(|_| "--at takes Unix seconds")?,
                )
            }
            "--leeway" => {
                leeway = value("--leeway")?
                    .parse()
                    .map_err(|_| "--leeway takes seconds")?
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            // A code may contain spaces (base45): the rest of the arguments, joined, is the code.
            _ => {
                code = Some(
                    std::iter::once(arg)
                        .chain(args.by_ref())
                        .collect::<Vec<_>>()
                        .join(" "),
                )
            }
        }
    }
    Ok(Args {
        trust_list: trust_list.ok_or("--trust-list is required")?,
        root: root.ok_or("--root is required")?,
        at,
        leeway,
        code: code.ok_or("the code is required")?,
    })
}

fn dcc_testcases(files: impl Iterator<Item = String>) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    let mut any = false;
    for file in files {
        any = true;
        match verification::dcc_testcase::run_file(std::path::Path::new(&file)) {
            Ok(result) => {
                if !result.ok && status == ExitCode::SUCCESS {
                    status = ExitCode::from(1);
                }
                println!("{}", serde_json::to_string(&result).unwrap_or_default());
            }
            Err(message) => {
                eprintln!("{message}");
                status = ExitCode::from(2);
            }
        }
    }
    if !any {
        eprintln!("usage: hc-verify dcc-testcase FILE...");
        return ExitCode::from(2);
    }
    status
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("dcc-testcase") {
        return dcc_testcases(args.skip(1));
    }
    let args = match parse(args) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let now = args.at.unwrap_or_else(|| chrono::Utc::now().timestamp());
    let store = (|| -> Result<hc_token::TrustStore, String> {
        let root = hc_token::pinned_root(&args.root)
            .ok_or_else(|| format!("--root {:?} is not REGION=KID:BASE64URL-KEY", args.root))?;
        let text = std::fs::read_to_string(&args.trust_list)
            .map_err(|e| format!("{}: {e}", args.trust_list))?;
        let signed: SignedTrustList = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a trust list: {e}", args.trust_list))?;
        let list = signed
            .verify(&root, now)
            .map_err(|e| format!("the trust list is refused: {e}"))?;
        list.trust_store().map_err(|e| e.to_string())
    })();
    let store = match store {
        Ok(s) => s,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match hc_token::decode(
        args.code.trim_end_matches(['\n', '\r']),
        &store,
        Validation {
            now,
            leeway: args.leeway,
        },
    ) {
        Ok(claims) => {
            println!(
                "{}",
                json!({
                    "valid": true,
                    "issuer": claims.issuer,
                    "colour": claims.colour,
                    "international": claims.flags.international(),
                    "stale": claims.flags.stale(),
                    "status_version": claims.status_version,
                    "negative_test_at": claims.negative_test_at,
                    "issued_at": claims.issued_at,
                    "expires_at": claims.expires_at,
                })
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!(
                "{}",
                json!({"valid": false, "reason": err.code(), "detail": err.to_string()})
            );
            ExitCode::from(1)
        }
    }
}
