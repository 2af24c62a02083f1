//! `GitRef::parse` agrees with the real `git check-ref-format --branch` on
//! generated names built from the characters its rules are about.

use plinth_confine::git::check_ref_format;
use proptest::prelude::*;

/// Names git's `--branch` check lets through (it reads them as `HEAD`)
/// that Plinth refuses on purpose.
fn stricter(name: &str) -> bool {
    name == "@" || name == "HEAD"
}

fn git_accepts(name: &str) -> bool {
    std::process::Command::new("git")
        .args(["check-ref-format", "--branch", name])
        .current_dir(std::env::temp_dir())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CEILING_DIRECTORIES", std::env::temp_dir())
        .output()
        .expect("run git (is it installed?)")
        .status
        .success()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_git(name in "[a-c./@{}~^:?*\\[\\\\ -]{0,3}(lock)?[a./-]{0,3}") {
        // `git check-ref-format --branch` expands `@{-N}` against a
        // repository; names with `@{` are refused by both either way.
        let ours = check_ref_format(&name).is_ok();
        prop_assert_eq!(ours, git_accepts(&name) && !stricter(&name), "disagreement on {:?}", name);
    }
}

#[test]
fn agrees_on_known_cases() {
    for name in [
        "main",
        "feature/x",
        "-x",
        "--upload-pack=touch${IFS}/tmp/x",
        "a..b",
        "a.lock",
        "a/.b",
        ".a",
        "a.",
        "@",
        "a@{1}",
        "a//b",
        "/a",
        "a/",
        "a b",
        "v1.2.3",
        "release/2026-12",
    ] {
        assert_eq!(check_ref_format(name).is_ok(), git_accepts(name) && !stricter(name), "disagreement on {name:?}");
    }
}
