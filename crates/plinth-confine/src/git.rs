//! The real `git` client, invoked so that user input can never become an
//! option or a command.
//!
//! - A [`GitCommand`] takes constant arguments only as `&'static str`; user
//!   input enters only as an option value in one argument (`--branch=NAME`),
//!   as a revision after `--end-of-options`, or as an operand after `--`.
//! - Refs are checked by [`GitRef::parse`] with `git check-ref-format
//!   --branch`'s rules; repository URLs by [`GitUrl::parse`]: never starting
//!   with `-`, no remote helpers (`ext::…`), and one of the transports
//!   `https`, `ssh`, `git` or (local repositories) `file`.
//! - Every run sets `GIT_ALLOW_PROTOCOL` to the transports the command
//!   needs (none for local-only commands), never prompts
//!   (`GIT_TERMINAL_PROMPT=0`, a no-op askpass, ssh in batch mode), ignores
//!   hooks and fsmonitor commands, has a time limit and bounded output, and
//!   hides credentials in URLs from everything it reports.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Default time limit of one git command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Most stdout kept from one command (ref listings of huge remotes).
const MAX_STDOUT: usize = 8 * 1024 * 1024;
/// Most stderr kept for error messages.
const MAX_STDERR: usize = 64 * 1024;
/// Longest ref name accepted.
const MAX_REF_BYTES: usize = 255;
/// Longest repository URL accepted.
const MAX_URL_BYTES: usize = 2048;

/// Why git could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("`{value}` is not a valid branch or ref name: {reason}")]
    InvalidRef { value: String, reason: &'static str },
    #[error("`{value}` is not an allowed repository URL: {reason}")]
    InvalidUrl { value: String, reason: String },
    #[error("cannot run git ({0}); install git and make sure it is on PATH")]
    NotInstalled(std::io::Error),
    #[error("`git {command}` took longer than {seconds}s and was stopped")]
    Timeout { command: String, seconds: u64 },
    #[error("`git {command}` failed: {said}")]
    Failed { command: String, said: String },
    #[error("`git {command}` wrote more than {limit} bytes and was stopped")]
    TooMuchOutput { command: String, limit: usize },
}

/// The transports git may use. Anything else (`http`, `ext::`, `fd::`,
/// remote helpers) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Https,
    Ssh,
    Git,
    /// Local repositories (a path or `file://`).
    File,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Transport::Https => "https",
            Transport::Ssh => "ssh",
            Transport::Git => "git",
            Transport::File => "file",
        }
    }
}

/// A branch, tag or other ref name that `git check-ref-format --branch`
/// accepts and that cannot be read as an option.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GitRef(String);

impl GitRef {
    pub fn parse(name: &str) -> Result<GitRef, GitError> {
        check_ref_format(name).map_err(|reason| GitError::InvalidRef { value: printable(name), reason })?;
        Ok(GitRef(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<OsStr> for GitRef {
    fn as_ref(&self) -> &OsStr {
        OsStr::new(&self.0)
    }
}

impl std::fmt::Display for GitRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The rules of `git check-ref-format --branch` (see git-check-ref-format(1)),
/// plus a length bound. `Err` says which rule failed.
pub fn check_ref_format(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > MAX_REF_BYTES {
        return Err("it is longer than 255 bytes");
    }
    if name.starts_with('-') {
        return Err("it starts with `-`, which git would read as an option");
    }
    if name == "@" {
        return Err("`@` alone is not a ref name");
    }
    if name == "HEAD" {
        return Err("`HEAD` is not a branch name");
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("it contains a control character");
    }
    if let Some(c) = name.chars().find(|c| matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')) {
        return Err(match c {
            ' ' => "it contains a space",
            _ => "it contains one of ~ ^ : ? * [ \\",
        });
    }
    if name.contains("..") {
        return Err("it contains `..`");
    }
    if name.contains("@{") {
        return Err("it contains `@{`");
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err("it starts or ends with `/`, or contains `//`");
    }
    if name.ends_with('.') {
        return Err("it ends with `.`");
    }
    for component in name.split('/') {
        if component.starts_with('.') {
            return Err("a `/`-separated part starts with `.`");
        }
        if component.ends_with(".lock") {
            return Err("a `/`-separated part ends with `.lock`");
        }
    }
    Ok(())
}

/// A repository address git may be given: a URL of an allowed transport,
/// an scp-like `user@host:path`, or an absolute local path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GitUrl {
    raw: String,
    transport: Transport,
}

impl GitUrl {
    pub fn parse(raw: &str) -> Result<GitUrl, GitError> {
        let bad = |reason: &str| GitError::InvalidUrl {
            value: crate::git::hide_credentials(&printable(raw)),
            reason: reason.to_string(),
        };
        let url = raw.trim();
        if url.is_empty() {
            return Err(bad("it is empty"));
        }
        if url.len() > MAX_URL_BYTES {
            return Err(bad("it is longer than 2048 bytes"));
        }
        if url.starts_with('-') {
            return Err(bad("it starts with `-`, which git would read as an option"));
        }
        if url.contains("::") && !url.contains("://") && !url.starts_with('/') {
            return Err(bad("remote helpers (`transport::address`) are not allowed"));
        }
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("it contains whitespace or a control character"));
        }
        let transport = if let Some((scheme, rest)) = url.split_once("://") {
            let transport = match scheme.to_ascii_lowercase().as_str() {
                "https" => Transport::Https,
                "ssh" | "git+ssh" | "ssh+git" => Transport::Ssh,
                "git" => Transport::Git,
                "file" => Transport::File,
                "http" => return Err(bad("plain `http` is not allowed; use https, ssh or git")),
                _ => return Err(bad("use an https, ssh or git URL, or a local path")),
            };
            if transport != Transport::File {
                let authority = rest.split('/').next().unwrap_or("");
                let host = authority.rsplit('@').next().unwrap_or("");
                if authority.is_empty() || host.is_empty() {
                    return Err(bad("it names no host"));
                }
                if host.starts_with('-') || authority.starts_with('-') {
                    return Err(bad("its host or user starts with `-`"));
                }
            } else if !rest.starts_with('/') {
                return Err(bad("a file URL must hold an absolute path (`file:///srv/git/repo`)"));
            }
            transport
        } else if url.starts_with('/') {
            Transport::File
        } else if let Some((authority, _path)) = url.split_once(':') {
            // scp-like `[user@]host:path`, as git reads it when no slash
            // comes before the colon.
            if authority.contains('/') {
                return Err(bad("give an absolute path, or a URL"));
            }
            let host = authority.rsplit('@').next().unwrap_or("");
            if host.is_empty() {
                return Err(bad("it names no host"));
            }
            if host.starts_with('-') || authority.starts_with('-') {
                return Err(bad("its host or user starts with `-`"));
            }
            Transport::Ssh
        } else {
            return Err(bad("give an https, ssh or git URL, or an absolute path"));
        };
        Ok(GitUrl { raw: url.to_string(), transport })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The path of a local repository (`/srv/repo` or `file:///srv/repo`).
    pub fn local_path(&self) -> Option<PathBuf> {
        if self.transport != Transport::File {
            return None;
        }
        let path = self.raw.strip_prefix("file://").unwrap_or(&self.raw);
        Some(PathBuf::from(path))
    }

    /// What people see: credentials in the URL hidden.
    pub fn display(&self) -> String {
        hide_credentials(&self.raw)
    }
}

impl std::fmt::Display for GitUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// `https://user:token@host/…` → `https://***@host/…`, anywhere in `text`.
pub fn hide_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme + 3);
        out.push_str(head);
        let authority_end = tail.find(|c: char| c == '/' || c.is_whitespace()).unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&tail[at..authority_end]);
            }
            None => out.push_str(&tail[..authority_end]),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// Control characters escaped, and at most 200 characters, for messages.
fn printable(value: &str) -> String {
    let escaped: String = value.chars().flat_map(char::escape_default).collect();
    if escaped.chars().count() > 200 {
        format!("{}…", escaped.chars().take(200).collect::<String>())
    } else {
        escaped
    }
}

/// One git invocation, built so that user input is never an option.
#[derive(Debug, Clone)]
pub struct GitCommand {
    subcommand: &'static str,
    config: Vec<OsString>,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    transports: Vec<Transport>,
    env: Vec<(&'static str, OsString)>,
    timeout: Duration,
    end_of_options: bool,
    operands: bool,
}

impl GitCommand {
    /// `git <subcommand>`.
    pub fn new(subcommand: &'static str) -> GitCommand {
        GitCommand {
            subcommand,
            config: Vec::new(),
            args: Vec::new(),
            dir: None,
            transports: Vec::new(),
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            end_of_options: false,
            operands: false,
        }
    }

    /// A constant argument (`--quiet`, `HEAD`, `--depth`, `1`).
    pub fn arg(mut self, arg: &'static str) -> GitCommand {
        debug_assert!(!self.end_of_options && !self.operands, "options go before revisions and operands");
        self.args.push(arg.into());
        self
    }

    /// `--option=value` in one argument, so the value is never an option.
    pub fn value(mut self, option: &'static str, value: impl AsRef<OsStr>) -> GitCommand {
        debug_assert!(option.starts_with("--") && !self.end_of_options && !self.operands);
        let mut arg = OsString::from(option);
        arg.push("=");
        arg.push(value.as_ref());
        self.args.push(arg);
        self
    }

    /// `-c key=value` before the subcommand.
    pub fn config(mut self, key: &'static str, value: impl AsRef<OsStr>) -> GitCommand {
        let mut pair = OsString::from(key);
        pair.push("=");
        pair.push(value.as_ref());
        self.config.push("-c".into());
        self.config.push(pair);
        self
    }

    /// A revision (a validated [`GitRef`], or an expression such as
    /// `HEAD~1`), after `--end-of-options` so it is never an option.
    pub fn rev(mut self, rev: impl AsRef<OsStr>) -> GitCommand {
        debug_assert!(!self.operands, "revisions go before operands");
        if !self.end_of_options {
            self.args.push("--end-of-options".into());
            self.end_of_options = true;
        }
        self.args.push(rev.as_ref().to_os_string());
        self
    }

    /// An operand (a path, a remote, a refspec), after `--`.
    pub fn operand(mut self, operand: impl AsRef<OsStr>) -> GitCommand {
        if !self.operands {
            self.args.push("--".into());
            self.operands = true;
        }
        self.args.push(operand.as_ref().to_os_string());
        self
    }

    /// A repository as an operand; its transport is allowed for this run.
    pub fn remote(self, url: &GitUrl) -> GitCommand {
        self.allow(url.transport()).operand(url.as_str())
    }

    /// Lets this run use `transport` (e.g. a fetch from a stored `origin`).
    pub fn allow(mut self, transport: Transport) -> GitCommand {
        if !self.transports.contains(&transport) {
            self.transports.push(transport);
        }
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> GitCommand {
        self.dir = Some(dir.to_path_buf());
        self
    }

    pub fn env(mut self, key: &'static str, value: impl AsRef<OsStr>) -> GitCommand {
        self.env.push((key, value.as_ref().to_os_string()));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> GitCommand {
        self.timeout = timeout;
        self
    }

    /// The argument vector after `git` (for logs and tests).
    pub fn argv(&self) -> Vec<OsString> {
        let mut argv = self.config.clone();
        for (key, value) in [("core.hooksPath", "/dev/null"), ("core.fsmonitor", "false")] {
            argv.push("-c".into());
            argv.push(format!("{key}={value}").into());
        }
        argv.push(self.subcommand.into());
        argv.extend(self.args.iter().cloned());
        argv
    }

    /// Runs git and returns its stdout; errors carry git's last words with
    /// credentials hidden.
    pub async fn run(self) -> Result<String, GitError> {
        let mut command = tokio::process::Command::new("git");
        command.args(self.argv());
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let allowed: Vec<&str> = self.transports.iter().map(|t| t.name()).collect();
        command
            .env("GIT_ALLOW_PROTOCOL", if allowed.is_empty() { "none".to_string() } else { allowed.join(":") })
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "true")
            .env("SSH_ASKPASS", "true")
            .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=15")
            .env("GIT_PROTOCOL_FROM_USER", "0")
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let name = self.subcommand.to_string();
        let seconds = self.timeout.as_secs();
        let outcome = tokio::time::timeout(self.timeout, async {
            let mut child = command.spawn().map_err(GitError::NotInstalled)?;
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            let (out, err) = tokio::join!(read_capped(stdout, MAX_STDOUT), read_capped(stderr, MAX_STDERR));
            let (out, out_full) = out;
            let (err, _) = err;
            if out_full {
                let _ = child.kill().await;
                return Err(GitError::TooMuchOutput { command: name.clone(), limit: MAX_STDOUT });
            }
            let status = child.wait().await.map_err(GitError::NotInstalled)?;
            Ok((status, out, err))
        })
        .await;
        let (status, stdout, stderr) = match outcome {
            Ok(result) => result?,
            Err(_) => return Err(GitError::Timeout { command: name, seconds }),
        };
        if status.success() {
            return Ok(String::from_utf8_lossy(&stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&stderr);
        let said = stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("no output").trim();
        Err(GitError::Failed { command: name, said: hide_credentials(said) })
    }
}

/// Reads a pipe to its end, keeping at most `limit` bytes; `true` when
/// there was more.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>, limit: usize) -> (Vec<u8>, bool) {
    let Some(mut pipe) = pipe else { return (Vec::new(), false) };
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return (out, false),
            Ok(n) => {
                if out.len() + n > limit {
                    return (out, true);
                }
                out.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_follow_check_ref_format() {
        for good in ["main", "feature/x", "release-1.2", "v1.0.0", "a@b", "ünïcode", "x.y/z"] {
            assert!(GitRef::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-x",
            "--upload-pack=touch${IFS}/tmp/x",
            "a..b",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            "/a",
            "a/",
            "a//b",
            "a.",
            ".a",
            "a/.b",
            "a.lock",
            "a/b.lock/c",
            "a@{1}",
            "@",
            "HEAD",
            "a\nb",
            "a\u{7f}",
        ] {
            assert!(GitRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = "a".repeat(256);
        assert!(GitRef::parse(&long).is_err());
    }

    #[test]
    fn urls_are_checked() {
        let ok = [
            ("https://github.com/org/repo.git", Transport::Https),
            ("ssh://git@github.com/org/repo.git", Transport::Ssh),
            ("git@github.com:org/repo.git", Transport::Ssh),
            ("git://host/repo", Transport::Git),
            ("file:///srv/git/repo", Transport::File),
            ("/srv/git/repo", Transport::File),
        ];
        for (url, transport) in ok {
            assert_eq!(GitUrl::parse(url).unwrap().transport(), transport, "{url}");
        }
        for bad in [
            "--upload-pack=touch /tmp/x",
            "-oProxyCommand=x",
            "ext::sh -c touch% /tmp/x",
            "ext::sh",
            "fd::17",
            "http://host/repo.git",
            "ssh://-oProxyCommand=x/repo",
            "ssh://user@-host/repo",
            "-host:repo",
            "relative/path",
            "file://relative",
            "https:///repo",
            "https://host/repo name",
            "",
        ] {
            assert!(GitUrl::parse(bad).is_err(), "{bad:?} accepted");
        }
        let secret = GitUrl::parse("https://bot:t0ken@git.example.com/o/r.git").unwrap();
        assert_eq!(secret.display(), "https://***@git.example.com/o/r.git");
        let error = GitUrl::parse("http://bot:t0ken@h/r").unwrap_err().to_string();
        assert!(!error.contains("t0ken"), "{error}");
        assert_eq!(
            hide_credentials("fatal: https://a:b@h/x failed; ssh://git@h2/y"),
            "fatal: https://***@h/x failed; ssh://***@h2/y"
        );
    }

    #[test]
    fn user_input_is_never_an_option() {
        let branch = GitRef::parse("main").unwrap();
        let url = GitUrl::parse("https://host/r.git").unwrap();
        let argv = GitCommand::new("clone")
            .arg("--quiet")
            .value("--branch", branch.as_str())
            .remote(&url)
            .operand("dir")
            .argv();
        let argv: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        let clone = argv.iter().position(|a| a == "clone").unwrap();
        assert_eq!(&argv[clone..], ["clone", "--quiet", "--branch=main", "--", "https://host/r.git", "dir"]);
        let argv = GitCommand::new("diff").arg("--name-only").rev(&branch).operand("a.yaml").argv();
        let tail: Vec<String> = argv.iter().rev().take(5).rev().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(tail, ["--name-only", "--end-of-options", "main", "--", "a.yaml"]);
    }
}
