//! The official EU DCC test cases (tests/dgc-testdata, copied from github.com/eu-digital-green-certificates/dgc-testdata
//! under its Apache-2.0 licence): every expected result of every case is reproduced, except the data's own errors
//! listed in `dcc_testcase::KNOWN_DATA_ERRORS` with their reasons; and `hc-verify dcc-testcase` says so as a command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use hc_token::dcc::{self, Signer, Signers};
use verification::dcc_testcase::{self, CaseResult, KNOWN_DATA_ERRORS};

/// The number of cases in the copy: a case silently dropped from the folder fails this test.
const CASES: usize = 408;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dgc-testdata")
}

fn cases() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for country in std::fs::read_dir(data()).expect("tests/dgc-testdata") {
        let country = country.expect("a folder entry").path();
        if country.is_dir() {
            for file in std::fs::read_dir(&country).expect("a country's folder") {
                let file = file.expect("a file entry").path();
                if file.extension().is_some_and(|e| e == "json") {
                    files.push(file);
                }
            }
        }
    }
    files.sort();
    files
}

/// Reading the QR pictures is most of the time: the cases are split over the cores.
fn run_all(files: &[PathBuf]) -> Vec<CaseResult> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let runs: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|f| dcc_testcase::run_file(f).expect("a readable test case"))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        runs.into_iter()
            .flat_map(|run| run.join().expect("no panic"))
            .collect()
    })
}

#[test]
fn every_expected_result_of_the_official_cases_is_reproduced() {
    let files = cases();
    assert_eq!(files.len(), CASES, "the cases in tests/dgc-testdata");
    let results = run_all(&files);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.ok)
        .map(|r| serde_json::to_string(r).expect("serialises"))
        .collect();
    assert!(
        failed.is_empty(),
        "{} cases not reproduced:\n{}",
        failed.len(),
        failed.join("\n")
    );

    // Every step of the format was run somewhere, and reproduced both ways where the data has both.
    let mut seen = BTreeSet::new();
    for result in &results {
        for (step, outcome) in &result.steps {
            if outcome.reproduced {
                seen.insert((step.clone(), outcome.actual));
            }
        }
    }
    for step in [
        "EXPECTEDVERIFY",
        "EXPECTEDDECODE",
        "EXPECTEDUNPREFIX",
        "EXPECTEDB45DECODE",
        "EXPECTEDSCHEMAVALIDATION",
        "EXPECTEDPICTUREDECODE",
        "EXPECTEDCOMPRESSION",
        "EXPECTEDEXPIRATIONCHECK",
        "EXPECTEDKEYUSAGE",
    ] {
        for actual in [true, false] {
            assert!(
                seen.contains(&(step.to_owned(), Some(actual))),
                "{step} {actual} never reproduced"
            );
        }
    }
    for step in ["EXPECTEDVALIDJSON", "EXPECTEDVALIDOBJECT", "EXPECTEDENCODE"] {
        assert!(
            seen.contains(&(step.to_owned(), Some(true))),
            "{step} never reproduced"
        );
    }

    // Each listed error of the data still covers a result that is not reproduced: the list cannot outlive a fix.
    for (file, key, _) in KNOWN_DATA_ERRORS {
        let covers = results.iter().any(|r| {
            r.steps.get(*key).is_some_and(|s| {
                s.known_error.is_some() && !s.reproduced && (file.ends_with('*') || r.file == *file)
            })
        });
        assert!(
            covers,
            "the known error ({file}, {key}) covers no result that is not reproduced"
        );
    }
}

/// The whole chain, `dcc::verify`, as the service runs it: a code whose signature, times and key usage are all
/// expected to pass verifies; one where any is expected to fail is refused.
#[test]
fn the_whole_chain_agrees_with_the_cases_steps() {
    let (mut accepted, mut refused) = (0, 0);
    for file in cases() {
        let case: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("readable")).expect("JSON");
        let expected = |key: &str| case["EXPECTEDRESULTS"][key].as_bool();
        let (Some(prefix), Some(clock), Some(certificate)) = (
            case["PREFIX"].as_str(),
            case["TESTCTX"]["VALIDATIONCLOCK"].as_str(),
            case["TESTCTX"]["CERTIFICATE"].as_str(),
        ) else {
            continue;
        };
        let steps = [
            "EXPECTEDVERIFY",
            "EXPECTEDEXPIRATIONCHECK",
            "EXPECTEDKEYUSAGE",
        ]
        .map(expected);
        // The schema step is judged by the test above, where the Dutch cases' results are listed as errors.
        let schema_valid = hc_token::dcc::Certificate::from_json(case["JSON"].clone()).is_ok();
        if steps.contains(&None) || !schema_valid {
            continue;
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(certificate)
            .expect("base64");
        let signers = Signers::new([Signer::from_der(&der).expect("a usable signer")]);
        let clock = dcc_testcase::parse_clock(clock).expect("a clock");
        let outcome = dcc::verify(prefix, &signers, clock, 0);
        if steps.iter().all(|s| *s == Some(true)) {
            let verified = outcome.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert!(verified.issued_at <= clock && clock <= verified.expires_at);
            accepted += 1;
        } else {
            assert!(outcome.is_err(), "{} verified", file.display());
            refused += 1;
        }
    }
    assert!(
        accepted > 100 && refused > 10,
        "accepted {accepted}, refused {refused}"
    );
}

#[test]
fn the_command_exits_zero_only_when_every_result_is_reproduced() {
    let good = data().join("common/CO1.json");
    let out = Command::new(env!("CARGO_BIN_EXE_hc-verify"))
        .args([
            "dcc-testcase",
            good.to_str().expect("a path"),
            data().join("common/CO5.json").to_str().expect("a path"),
        ])
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON line per file"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["file"], "common/CO1.json");
    assert_eq!(lines[1]["steps"]["EXPECTEDVERIFY"]["expected"], false);
    assert_eq!(lines[1]["steps"]["EXPECTEDVERIFY"]["actual"], false);

    // The same case claiming its signature fails: not reproduced, exit 1.
    let mut case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&good).expect("readable")).expect("JSON");
    case["EXPECTEDRESULTS"]["EXPECTEDVERIFY"] = false.into();
    let dir = std::env::temp_dir().join(format!("dcc-testcase-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("common")).expect("a temporary folder");
    let wrong = dir.join("common/CO1.json");
    std::fs::write(&wrong, case.to_string()).expect("written");
    let out = Command::new(env!("CARGO_BIN_EXE_hc-verify"))
        .args(["dcc-testcase", wrong.to_str().expect("a path")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON line");
    assert_eq!(line["steps"]["EXPECTEDVERIFY"]["reproduced"], false);
    assert_eq!(line["ok"], false);

    // A file that is not a test case: exit 2.
    std::fs::write(&wrong, "{}").expect("written");
    let out = Command::new(env!("CARGO_BIN_EXE_hc-verify"))
        .args(["dcc-testcase", wrong.to_str().expect("a path")])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(dir);
}
