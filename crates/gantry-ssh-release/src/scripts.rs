//! Remote shell scripts, one per stage, as plain strings.
//!
//! Each stage of a release is one POSIX `sh` script sent over the host's one multiplexed SSH
//! connection as the `sh -c` argument of the exec request (stdin carries only payloads: the
//! artifact or the `.env` secret). Scripts report facts as `GANTRY key=value` lines on
//! stdout and fail with a message on stderr. This module only builds text: it never connects, and
//! no secret is ever part of a script (secrets travel on stdin only).
//!
//! See: reference/ssh-release.md §1.3 (the switch is a `rename(2)` of a temp symlink; BusyBox
//! `ln -sfn` is not atomic) and §1.7 (an `mkdir` lock is atomic, a test-then-write file is not).

use std::fmt::Write as _;

/// Quotes `s` for a POSIX shell (single quotes).
pub(crate) fn q(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Facts every script needs.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    /// Deploy path as given (absolute, or relative to the login directory).
    pub deploy_path: String,
    /// Unique token of this run (lock owner, temp names).
    pub token: String,
    /// Index of the host in this run (several hosts may share one machine's `/tmp`).
    pub slot: usize,
}

/// Common prologue: strict mode, the deploy path made absolute, the pid file used to kill the
/// stage's process group on timeout or cancel, and `fail`.
pub(crate) fn prologue(ctx: &Ctx, stage: &str) -> String {
    let mut s = String::new();
    s.push_str("set -eu\numask 022\n");
    let _ = writeln!(s, "D={}", q(&ctx.deploy_path));
    s.push_str("case \"$D\" in /*) ;; *) D=\"$HOME/$D\" ;; esac\n");
    s.push_str("G=\"$D/.gantry\"\n");
    let _ = writeln!(s, "PIDF={}", pid_file(ctx, stage));
    // sshd runs a command without a PTY in a new session, so the process group of this shell is
    // the whole stage; remember it so a timeout/cancel can kill it (dropping the channel does not).
    s.push_str(
        // `read` is a builtin: no fork per stage (field 5 of /proc/<pid>/stat is the group).
        "PG=$$\n{ read -r _ _ _ _ PG _ < /proc/$$/stat; } 2>/dev/null || PG=$$\n{ echo \"$PG\" > \"$PIDF\"; } 2>/dev/null || true\ntrap 'st=$?; rm -f \"$PIDF\" 2>/dev/null; exit $st' EXIT\n",
    );
    s.push_str("fail() { echo \"$*\" >&2; exit 1; }\nfact() { echo \"GANTRY $1=$2\"; }\n");
    s
}

/// The pid file of a stage (in `/tmp`, which exists before the deploy path does).
pub(crate) fn pid_file(ctx: &Ctx, stage: &str) -> String {
    format!(
        "/tmp/gantry-{}-{}-{}-${{LOGNAME:-$(id -u)}}.pid",
        ctx.token, ctx.slot, stage
    )
}

/// Kills the process group recorded by a stage (used on timeout and cancellation).
pub(crate) fn kill(ctx: &Ctx, stage: &str) -> String {
    let f = pid_file(ctx, stage);
    format!(
        "f={f}\n[ -f \"$f\" ] || exit 0\npg=$(cat \"$f\")\nkill -TERM -\"$pg\" 2>/dev/null || true\nsleep 1\nkill -KILL -\"$pg\" 2>/dev/null || true\nrm -f \"$f\"\n"
    )
}

/// Several stage scripts as one round trip: each runs in its own subshell, in order; the first
/// failure stops the rest with its exit status (unless `keep_going`). The combined stage has its
/// own pid file under `name`, so a timeout or cancel kills all of it.
pub(crate) fn combine(ctx: &Ctx, name: &str, parts: &[String], keep_going: bool) -> String {
    let mut s = prologue(ctx, name);
    for p in parts {
        s.push_str("(\n");
        s.push_str(p);
        s.push_str("\n)");
        s.push_str(if keep_going { " || true\n" } else { "\n" });
    }
    s
}

/// Read-only inspection: resolves and validates the deploy path, reads `current`, `previous`, the
/// lock holder, free space and inodes, and checks the tools the later stages need.
pub(crate) fn preflight(ctx: &Ctx, tools: &[&str], need: Option<(u64, u64)>) -> String {
    let mut s = prologue(ctx, "preflight");
    s.push_str(
        r#"home=$(cd "$HOME" && pwd -P)
p="$D"
while [ ! -e "$p" ]; do p=$(dirname "$p"); done
if [ -e "$D" ]; then
  [ -d "$D" ] || fail "deploy path $D exists and is not a directory"
  rd=$(cd "$D" && pwd -P)
  [ "$rd" != "/" ] || fail "deploy path $D resolves to / on this host"
  [ "$rd" != "$home" ] || fail "deploy path $D is the deploy user's home directory itself; use a subdirectory such as $D/app"
fi
if [ -e "$D/current" ] && [ ! -L "$D/current" ]; then
  fail "$D/current is a real directory, not a symlink; move it away (e.g. into $D/releases/<id>) so it can be replaced atomically"
fi
fact deploy_path "$D"
if [ -L "$D/current" ]; then fact current "$(basename "$(readlink "$D/current")")"; fi
if [ -f "$G/previous" ]; then fact previous "$(cat "$G/previous")"; fi
fact avail_kb "$(df -Pk "$p" | awk 'NR==2{print $4}')"
fact free_inodes "$(df -Pi "$p" | awk 'NR==2{print $4}')"
if [ -d "$G/lock" ]; then fact lock_holder "$(tr '\n' ' ' < "$G/lock/owner" 2>/dev/null || true)"; fi
if [ -d "$D/releases" ]; then
  for r in "$D"/releases/*/; do
    [ -d "$r" ] || continue
    n=$(basename "$r")
    if [ -f "$r/.complete" ]; then fact complete "$(head -n1 "$r/.complete" | cut -d' ' -f1) $n"; fi
  done
fi
"#,
    );
    for t in tools {
        let _ = writeln!(
            s,
            "command -v {t} >/dev/null 2>&1 || fail \"required program '{t}' is not installed on this host\""
        );
    }
    if let Some((bytes, entries)) = need {
        let kb = bytes.div_ceil(1024);
        let inodes = entries + entries / 10;
        let _ = writeln!(
            s,
            r#"avail=$(df -Pk "$p" | awk 'NR==2{{print $4}}')
if [ "$avail" -lt {kb} ]; then fail "not enough free space under $D: need {kb} KiB (min-free-space), have $avail KiB; nothing was uploaded"; fi
fi=$(df -Pi "$p" | awk 'NR==2{{print $4}}')
case "$fi" in ''|*[!0-9]*) ;; *) if [ "$fi" -gt 0 ] && [ "$fi" -lt {inodes} ]; then fail "not enough free inodes under $D: need {inodes}, have $fi"; fi ;; esac"#
        );
    }
    s
}

/// Takes the `mkdir` lock, waiting up to `wait_secs`; exit 75 names the holder.
pub(crate) fn lock(ctx: &Ctx, owner: &str, wait_secs: u64) -> String {
    let mut s = prologue(ctx, "lock");
    let _ = writeln!(s, "OWNER={}\nWAIT={wait_secs}", q(owner));
    s.push_str(
        r#"mkdir -p "$D/releases" "$D/shared" "$G"
deadline=$(( $(date +%s) + WAIT ))
while ! mkdir "$G/lock" 2>/dev/null; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    # the holder writes its owner file right after its mkdir: give it a moment to appear
    holder=""
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      holder=$(tr '\n' ' ' < "$G/lock/owner" 2>/dev/null || true)
      [ -z "$holder" ] && [ -d "$G/lock" ] || break
      sleep 0.1 2>/dev/null || sleep 1
    done
    [ -n "$holder" ] || holder=unknown
    echo "deploy lock $G/lock is held by: $holder" >&2
    fact locked_by "$holder"
    exit 75
  fi
  sleep 1
done
printf '%s\n' "$OWNER" > "$G/lock/owner"
fact locked yes
"#,
    );
    s
}

/// Releases our lock (only when we own it); `force` removes anyone's lock (`--unlock`).
pub(crate) fn unlock(ctx: &Ctx, force: bool) -> String {
    let mut s = prologue(ctx, "unlock");
    if force {
        s.push_str(
            r#"if [ -d "$G/lock" ]; then
  fact removed_lock "$(tr '\n' ' ' < "$G/lock/owner" 2>/dev/null || echo unknown)"
  rm -rf "$G/lock"
else
  fact removed_lock none
fi
"#,
        );
    } else {
        let _ = writeln!(s, "TOKEN={}", q(&ctx.token));
        s.push_str(
            r#"if [ -d "$G/lock" ] && grep -q "token=$TOKEN" "$G/lock/owner" 2>/dev/null; then
  rm -rf "$G/lock"
  fact unlocked yes
fi
"#,
        );
    }
    s
}

/// Streams the artifact (stdin) into `tar -x` in a partial directory while hashing it on the
/// server; only a matching checksum turns `.partial-<id>` into `releases/<id>`.
pub(crate) fn upload(ctx: &Ctx, release: &str, gzip: bool, sha256: &str) -> String {
    let mut s = prologue(ctx, "upload");
    let _ = writeln!(
        s,
        "ID={}\nSUM={}\nZ={}\nTOKEN={}",
        q(release),
        q(sha256),
        if gzip { "z" } else { "" },
        q(&ctx.token)
    );
    s.push_str(
        r#"R="$D/releases/$ID"
P="$D/releases/.partial-$ID"
if [ -f "$R/.complete" ]; then
  fail "release $ID already exists and is complete on this host; choose another release-id, or use rollback-to: $ID"
fi
rm -rf "$P" "$R"
mkdir -p "$P"
FIFO="$G/upload-$TOKEN.fifo"
rm -f "$FIFO" "$FIFO.sum"
mkfifo "$FIFO"
# openssl uses the CPU's SHA extensions (~4x coreutils' sha256sum); both print the hex first.
if command -v openssl >/dev/null 2>&1; then
  openssl dgst -sha256 -r < "$FIFO" > "$FIFO.sum" &
else
  sha256sum < "$FIFO" > "$FIFO.sum" &
fi
hp=$!
set +e
tee "$FIFO" | { tar -x${Z}f - -C "$P"; st=$?; cat > /dev/null; exit $st; }
st=$?
wait $hp
set -e
got=$(cut -d' ' -f1 "$FIFO.sum" 2>/dev/null || true)
rm -f "$FIFO" "$FIFO.sum"
if [ "$st" -ne 0 ]; then
  rm -rf "$P"
  fail "unpacking the artifact failed (tar exit $st); the partial release was removed"
fi
if [ "$got" != "$SUM" ]; then
  rm -rf "$P"
  fact received_sha256 "$got"
  fail "checksum mismatch on arrival: expected sha256 $SUM, received $got; the partial release was removed"
fi
mv "$P" "$R"
fact received_sha256 "$got"
fact files "$(find "$R" | wc -l | tr -d ' ')"
"#,
    );
    s
}

/// Writes the `.env` secret (stdin) to a temp file (0600) and renames it into place, after a
/// backup of the old file to `<path>.bak.<stamp>`; keeps the newest `keep` backups.
pub(crate) fn dotenv(ctx: &Ctx, path: &str, stamp: &str, keep: u32) -> String {
    let mut s = prologue(ctx, "dotenv");
    let _ = writeln!(
        s,
        "F={}\nSTAMP={}\nKEEP={keep}\nTOKEN={}",
        q(path),
        q(stamp),
        q(&ctx.token)
    );
    s.push_str(
        r#"case "$F" in /*) ;; *) F="$D/$F" ;; esac
mkdir -p "$(dirname "$F")"
T="$F.tmp-$TOKEN"
rm -f "$T"
( umask 077; cat > "$T" )
chmod 600 "$T"
if [ -f "$F" ] && cmp -s "$T" "$F"; then
  rm -f "$T"
  fact dotenv unchanged
  exit 0
fi
if [ -f "$F" ]; then
  cp -p "$F" "$F.bak.$STAMP"
  fact dotenv_backup "$F.bak.$STAMP"
fi
mv -f "$T" "$F"
fact dotenv written
ls -1 "$F".bak.* 2>/dev/null | sort -r | tail -n +$((KEEP + 1)) | while IFS= read -r old; do rm -f "$old"; done
"#,
    );
    s
}

/// What the prepare stage does inside the new release.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct Prepare {
    /// Shared files/dirs (a trailing `/` means a directory).
    pub shared: Vec<String>,
    /// `requirements.txt` path inside the release, when a venv is wanted.
    pub requirements: Option<String>,
    /// The Python interpreter on the host.
    pub python: String,
    /// Extra `pip install` arguments (e.g. `--no-index --find-links wheels`).
    pub pip_args: String,
    /// Hook run in the release before the switch (migrations).
    pub script: Option<String>,
    /// Import smoke test run with the venv before the switch.
    pub smoke: Option<String>,
    /// Completion stamp written into `.complete` (epoch seconds and run).
    pub stamp: String,
    /// Verify only: mark `.verified-only`, not `.complete`.
    pub verify_only: bool,
}

fn env_exports() -> &'static str {
    "export DEPLOY_PATH=\"$D\" RELEASE_PATH=\"$R\" RELEASE_ID=\"$ID\"\n"
}

/// Links shared paths, builds or reuses the venv (by hash of requirements + Python version), runs
/// the hook and the smoke test, and marks the release `.complete` (or `.verified-only`).
pub(crate) fn prepare(ctx: &Ctx, release: &str, p: &Prepare) -> String {
    let mut s = prologue(ctx, "prepare");
    let _ = writeln!(s, "ID={}\nR=\"$D/releases/$ID\"", q(release));
    s.push_str("[ -d \"$R\" ] || fail \"release $R does not exist\"\ncd \"$R\"\n");
    s.push_str(env_exports());
    for item in &p.shared {
        let is_dir = item.ends_with('/');
        let name = item.trim_end_matches('/');
        let _ = writeln!(s, "X={}", q(name));
        s.push_str(
            r#"S="$D/shared/$X"
mkdir -p "$(dirname "$S")" "$(dirname "$R/$X")"
if [ ! -e "$S" ] && [ -e "$R/$X" ]; then cp -a "$R/$X" "$S"; fi
"#,
        );
        if is_dir {
            s.push_str("[ -e \"$S\" ] || mkdir -p \"$S\"\n");
        } else {
            s.push_str("[ -e \"$S\" ] || : > \"$S\"\n");
        }
        s.push_str("rm -rf \"$R/$X\"\nln -s \"$S\" \"$R/$X\"\nfact shared \"$X\"\n");
    }
    if let Some(req) = &p.requirements {
        let _ = writeln!(
            s,
            "REQ={}\nPY={}\nPIP_ARGS={}",
            q(req),
            q(&p.python),
            q(&p.pip_args)
        );
        s.push_str(
            r#"[ -f "$REQ" ] || fail "requirements file $REQ is not in the release"
command -v "$PY" >/dev/null 2>&1 || fail "python interpreter '$PY' is not installed on this host"
H=$( { cat "$REQ"; "$PY" -c 'import sys, platform; print(sys.version); print(platform.machine())'; printf '%s' "$PIP_ARGS"; } | sha256sum | cut -c1-16)
V="$D/shared/venvs/$H"
if [ -f "$V/.ready" ]; then
  fact venv "reused $H"
else
  rm -rf "$V"
  mkdir -p "$D/shared/venvs"
  "$PY" -m venv "$V" >&2 || { rm -rf "$V"; fail "creating the virtualenv failed (is python3-venv installed?)"; }
  # shellcheck disable=SC2086
  if ! "$V/bin/pip" install --disable-pip-version-check --no-input $PIP_ARGS -r "$REQ" >&2; then
    rm -rf "$V"
    fail "pip install -r $REQ failed; the previous release is untouched"
  fi
  date +%s > "$V/.ready"
  fact venv "built $H"
fi
rm -rf "$R/.venv"
ln -s "$V" "$R/.venv"
export VIRTUAL_ENV="$R/.venv" PATH="$R/.venv/bin:$PATH"
"#,
        );
    }
    if let Some(script) = &p.script {
        s.push_str("echo '--- script hook' >&2\n");
        s.push_str(&user_block(script, "the script hook"));
        s.push_str("cd \"$R\"\n");
    }
    if let Some(smoke) = &p.smoke {
        s.push_str("echo '--- smoke test' >&2\n");
        s.push_str(&user_block(smoke, "the smoke test"));
    }
    let _ = writeln!(s, "STAMP={}", q(&p.stamp));
    if p.verify_only {
        s.push_str("printf '%s\\n' \"$STAMP\" > \"$R/.verified-only\"\nfact state verified-only\n");
    } else {
        s.push_str("printf '%s\\n' \"$STAMP\" > \"$R/.complete\"\nfact state complete\n");
    }
    s
}

/// Runs a user command in a subshell with `set -e` (every line checked, unlike ssh-action's
/// "last command wins"), output to stderr, and fails the stage naming `what` when it fails.
fn user_block(cmd: &str, what: &str) -> String {
    // `set -e` is ignored inside `( … ) || x`, so test the status separately.
    format!(
        "set +e\n( set -e\n{cmd}\n) >&2\nrc=$?\nset -e\n[ \"$rc\" -eq 0 ] || fail \"{what} failed (exit $rc)\"\n"
    )
}

/// Switches `current` to `releases/<id>` with a rename of a unique temp symlink (`mv -T`), and
/// records the release it replaced in `.gantry/previous`.
pub(crate) fn switch(ctx: &Ctx, release: &str, require_complete: bool) -> String {
    let mut s = prologue(ctx, "switch");
    let _ = writeln!(s, "ID={}\nTOKEN={}", q(release), q(&ctx.token));
    s.push_str("R=\"$D/releases/$ID\"\n[ -d \"$R\" ] || fail \"release $ID does not exist on this host\"\n");
    if require_complete {
        s.push_str("[ -f \"$R/.complete\" ] || fail \"release $ID is not complete; refusing to switch to it\"\n[ ! -f \"$R/.failed\" ] || fail \"release $ID is marked failed; refusing to switch to it\"\n");
    }
    s.push_str(
        r#"old=""
if [ -L "$D/current" ]; then old=$(basename "$(readlink "$D/current")"); fi
rm -f "$D"/.current.tmp-*
T="$D/.current.tmp-$TOKEN"
ln -s "releases/$ID" "$T"
# rename(2) of the temp link over `current`: GNU and BusyBox `mv -T`, BSD/macOS `mv -h`; a plain
# `mv` would move the link INTO the directory `current` points to, so without either flag the
# rename is done by python3 or perl, or the switch is refused.
if mv -T "$T" "$D/current" 2>/dev/null; then :
elif mv -h "$T" "$D/current" 2>/dev/null && [ ! -e "$T" ]; then :
elif command -v python3 >/dev/null 2>&1; then
  python3 -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$T" "$D/current" || fail "renaming $T to $D/current failed"
elif command -v perl >/dev/null 2>&1; then
  perl -e 'rename($ARGV[0], $ARGV[1]) or die "$!\n"' "$T" "$D/current" || fail "renaming $T to $D/current failed"
else
  rm -f "$T"
  fail "cannot switch atomically on this host: its mv has neither -T nor -h, and there is no python3 or perl"
fi
[ -L "$D/current" ] || fail "$D/current is not a symlink after the switch"
if [ -n "$old" ] && [ "$old" != "$ID" ]; then
  printf '%s\n' "$old" > "$G/previous.tmp"
  mv -f "$G/previous.tmp" "$G/previous"
fi
fact switched_from "$old"
fact current "$ID"
"#,
    );
    s
}

/// Runs the restart command in `current`.
pub(crate) fn restart(ctx: &Ctx, command: &str) -> String {
    let mut s = prologue(ctx, "restart");
    s.push_str("cd \"$D/current\"\nR=$(pwd -P)\nID=$(basename \"$R\")\n");
    s.push_str(env_exports());
    s.push_str(&user_block(command, "the restart command"));
    s
}

/// How the health check probes.
#[derive(Clone, Debug, serde::Serialize)]
pub enum Probe {
    /// A command run in `current` on the host.
    Command(String),
    /// An HTTP(S) URL fetched from the host.
    Url(String),
}

/// Retries the probe until it passes or `timeout_secs` elapse.
pub(crate) fn health(ctx: &Ctx, probe: &Probe, timeout_secs: u64, interval_secs: u64) -> String {
    let mut s = prologue(ctx, "health");
    let _ = writeln!(
        s,
        "DEADLINE=$(( $(date +%s) + {timeout_secs} ))\nOUT=\"/tmp/gantry-$$-health.out\"\ncd \"$D/current\"\nR=$(pwd -P)\nID=$(basename \"$R\")"
    );
    s.push_str(env_exports());
    let check = match probe {
        Probe::Command(c) => format!("( set -e\n{c}\n)"),
        Probe::Url(u) => {
            let u = q(u);
            format!(
                "( if command -v curl >/dev/null 2>&1; then curl -fsS -m 5 -o /dev/null {u}; elif command -v wget >/dev/null 2>&1; then wget -q -T 5 -O /dev/null {u}; else python3 -c 'import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' {u}; fi )"
            )
        }
    };
    let _ = writeln!(
        s,
        r#"n=0
set +e
while :; do
  n=$((n + 1))
  {check} > "$OUT" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then rm -f "$OUT"; fact healthy "$n"; exit 0; fi
  if [ "$(date +%s)" -ge "$DEADLINE" ]; then
    tail -c 2000 "$OUT" >&2 || true
    rm -f "$OUT"
    fail "health check still failing after $n attempts (last exit $rc)"
  fi
  sleep {interval_secs}
done"#
    );
    s
}

/// Marks a release failed (kept for inspection, never a rollback target or a kept release).
pub(crate) fn mark_failed(ctx: &Ctx, release: &str, reason: &str) -> String {
    let mut s = prologue(ctx, "mark");
    let _ = writeln!(s, "ID={}\nWHY={}", q(release), q(reason));
    s.push_str(
        r#"R="$D/releases/$ID"
rm -rf "$D/releases/.partial-$ID"
if [ -d "$R" ]; then
  rm -f "$R/.complete"
  printf '%s\n' "$WHY" > "$R/.failed"
  fact marked failed
fi
"#,
    );
    s
}

/// Picks the rollback target: `to` when given (must be complete and not failed), else the release
/// recorded as previous, else the newest complete release other than current.
pub(crate) fn rollback_target(ctx: &Ctx, to: Option<&str>) -> String {
    let mut s = prologue(ctx, "target");
    let _ = writeln!(s, "TO={}", q(to.unwrap_or("")));
    s.push_str(
        r#"cur=""
if [ -L "$D/current" ]; then cur=$(basename "$(readlink "$D/current")"); fi
fact current "$cur"
ok() { [ -n "$1" ] && [ -f "$D/releases/$1/.complete" ] && [ ! -f "$D/releases/$1/.failed" ]; }
if [ -n "$TO" ]; then
  ok "$TO" || fail "rollback-to: release $TO does not exist or is not a complete release on this host"
  fact target "$TO"; exit 0
fi
prev=""
if [ -f "$G/previous" ]; then prev=$(cat "$G/previous"); fi
if [ "$prev" != "$cur" ] && ok "$prev"; then fact target "$prev"; exit 0; fi
best=""
for r in "$D"/releases/*/; do
  n=$(basename "$r")
  [ "$n" != "$cur" ] || continue
  ok "$n" || continue
  [ ! -f "$r/.rolled-back" ] || continue
  echo "$(head -n1 "$r/.complete" | cut -d' ' -f1) $n"
done | sort -n | tail -n1 | cut -d' ' -f2 > "/tmp/gantry-$$-target" || true
best=$(cat "/tmp/gantry-$$-target" 2>/dev/null || true)
rm -f "/tmp/gantry-$$-target"
[ -n "$best" ] || fail "no complete release to roll back to (current: ${cur:-none})"
fact target "$best"
"#,
    );
    s
}

/// After a rollback: marks the release we left as rolled back and records the next candidate.
pub(crate) fn after_rollback(ctx: &Ctx, left: &str, failed_reason: Option<&str>) -> String {
    let mut s = prologue(ctx, "after-rollback");
    let _ = writeln!(s, "LEFT={}", q(left));
    match failed_reason {
        Some(why) => {
            let _ = writeln!(
                s,
                "WHY={}\nif [ -d \"$D/releases/$LEFT\" ]; then rm -f \"$D/releases/$LEFT/.complete\"; printf '%s\\n' \"$WHY\" > \"$D/releases/$LEFT/.failed\"; fi",
                q(why)
            );
        }
        None => {
            s.push_str("if [ -d \"$D/releases/$LEFT\" ]; then date +%s > \"$D/releases/$LEFT/.rolled-back\"; fi\n");
        }
    }
    s.push_str("rm -f \"$G/previous\"\n");
    s
}

/// Keeps the newest `keep` complete releases plus current, previous and any release a running
/// process uses; removes partial, failed (all but the newest) and older releases, and venvs no
/// kept release links to.
pub(crate) fn cleanup(ctx: &Ctx, keep: u32, this_release: &str) -> String {
    let mut s = prologue(ctx, "cleanup");
    let _ = writeln!(s, "KEEP={keep}\nTHIS={}", q(this_release));
    s.push_str(
        r#"cd "$D"
RD=$(pwd -P)
cur=""; [ -L current ] && cur=$(basename "$(readlink current)")
prev=""; [ -f "$G/previous" ] && prev=$(cat "$G/previous")
inuse=$(ls -l /proc/[0-9]*/cwd 2>/dev/null | sed -n "s#.* -> $RD/releases/\([^/]*\).*#\1#p" | sort -u | tr '\n' ' ' || true)
keep=" $cur $prev $THIS $inuse "
for r in $(for d in releases/*/; do [ -f "$d.complete" ] && echo "$(head -n1 "$d.complete" | cut -d' ' -f1) $(basename "$d")"; done | sort -rn | head -n "$KEEP" | cut -d' ' -f2); do
  keep="$keep$r "
done
newest_failed=$(ls -1dt releases/*/.failed 2>/dev/null | head -n1 | cut -d/ -f2)
keep="$keep$newest_failed "
for p in releases/.partial-*; do
  [ -e "$p" ] || continue
  case "$p" in "releases/.partial-$THIS") continue ;; esac
  rm -rf "$p"; fact removed "$(basename "$p")"
done
for d in releases/*/; do
  [ -d "$d" ] || continue
  n=$(basename "$d")
  case "$keep" in *" $n "*) continue ;; esac
  rm -rf "releases/$n"; fact removed "$n"
done
# pid files of stages whose shell was killed before its EXIT trap ran (a dropped connection)
find /tmp -maxdepth 1 -name 'gantry-*.pid' -user "$(id -u)" -mmin +1440 -exec rm -f {} + 2>/dev/null || true
if [ -d shared/venvs ]; then
  used=" $(for l in releases/*/.venv; do [ -L "$l" ] && basename "$(readlink "$l")"; done | tr '\n' ' ') "
  for v in shared/venvs/*/; do
    [ -d "$v" ] || continue
    h=$(basename "$v")
    case "$used" in *" $h "*) continue ;; esac
    rm -rf "shared/venvs/$h"; fact removed_venv "$h"
  done
fi
"#,
    );
    s
}

/// Appends one JSON line to `.gantry/history.jsonl`.
pub(crate) fn history(ctx: &Ctx, line: &str) -> String {
    let mut s = prologue(ctx, "history");
    let _ = writeln!(s, "LINE={}", q(line));
    s.push_str("mkdir -p \"$G\"\nprintf '%s\\n' \"$LINE\" >> \"$G/history.jsonl\"\n");
    s
}

/// Runs the post-script in `current`.
pub(crate) fn post_script(ctx: &Ctx, command: &str) -> String {
    let mut s = prologue(ctx, "post-script");
    s.push_str("cd \"$D/current\"\nR=$(pwd -P)\nID=$(basename \"$R\")\n");
    s.push_str(env_exports());
    s.push_str(&user_block(command, "the post-script"));
    s
}

/// Parses `GANTRY key=value` lines.
pub(crate) fn facts(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("GANTRY "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            deploy_path: "apps/my app".into(),
            token: "tok1".into(),
            slot: 0,
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(q("abc/d-e"), "abc/d-e");
        assert_eq!(q("it's"), "'it'\\''s'");
        assert_eq!(q(""), "''");
    }

    #[test]
    fn switch_is_a_rename_of_a_unique_temp_link() {
        let s = switch(&ctx(), "20260101T000000Z", true);
        assert!(s.contains("mv -T \"$T\" \"$D/current\""));
        assert!(s.contains("T=\"$D/.current.tmp-$TOKEN\""));
        assert!(!s.contains("ln -sfn"));
        assert!(s.contains("D='apps/my app'"));
    }

    #[test]
    fn facts_parse() {
        let f = facts("noise\nGANTRY current=r1\nGANTRY avail_kb=12 \n");
        assert_eq!(
            f,
            vec![
                ("current".to_string(), "r1".to_string()),
                ("avail_kb".to_string(), "12".to_string())
            ]
        );
    }

    #[test]
    fn scripts_are_valid_sh() {
        let c = ctx();
        let p = Prepare {
            shared: vec!["logs/".into(), ".env".into()],
            requirements: Some("requirements.txt".into()),
            python: "python3".into(),
            pip_args: "--no-index".into(),
            script: Some("echo migrate".into()),
            smoke: Some("python -c 'import app'".into()),
            stamp: "1 run".into(),
            verify_only: false,
        };
        for s in [
            preflight(&c, &["tar"], Some((1 << 20, 10))),
            combine(
                &c,
                "finish",
                &[cleanup(&c, 2, "r1"), unlock(&c, false)],
                true,
            ),
            lock(&c, "token=tok1", 5),
            unlock(&c, false),
            unlock(&c, true),
            upload(&c, "r1", true, "abc"),
            dotenv(&c, "shared/.env", "20260101T000000Z", 5),
            prepare(&c, "r1", &p),
            switch(&c, "r1", true),
            restart(&c, "systemctl restart app"),
            health(&c, &Probe::Url("http://127.0.0.1:8080/h".into()), 10, 1),
            health(&c, &Probe::Command("true".into()), 10, 1),
            mark_failed(&c, "r1", "health"),
            rollback_target(&c, None),
            after_rollback(&c, "r2", Some("x")),
            cleanup(&c, 3, "r1"),
            history(&c, "{\"a\":\"it's\"}"),
            post_script(&c, "echo hi"),
            kill(&c, "upload"),
        ] {
            #[allow(clippy::disallowed_methods)] // syntax check only: `sh -n` reads the script
            let out = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&s)
                .output()
                .expect("sh");
            assert!(
                out.status.success(),
                "{}\n{s}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
