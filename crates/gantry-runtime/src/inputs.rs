//! Reading inputs with `@actions/core` semantics.
//!
//! An input comes from its long flag (`--build-args`) when given, else from `INPUT_<NAME>`
//! (upper-cased, spaces to `_`, **hyphens kept**: `INPUT_BUILD-ARGS`), else from the table's
//! default. Values are trimmed; empty means absent (the runner passes every declared input, empty
//! when unset, so "not given" and "empty" cannot be told apart). Booleans are the YAML 1.2 core
//! set only. Lists split on newlines (and on commas only where a caller asks for it). Secrets are
//! masked the moment they are read. Every error names the input and quotes the value (a secret's
//! value is never quoted).
//!
//! This module validates shapes only; what a value means is each action's `Config::resolve`.
//!
//! See: <https://github.com/actions/toolkit/blob/main/packages/core/src/core.ts> (`getInput`,
//! `getBooleanInput`, `getMultilineInput`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::action::{ActionSpec, COMMON_INPUTS};
use crate::{Console, Env, Secret};

/// An input that is missing or malformed.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A required input is empty.
    #[error("Input required and not supplied: {name}")]
    Required {
        /// Input name.
        name: String,
    },
    /// A value has the wrong shape or meaning.
    #[error("input `{name}`: invalid value `{value}`: {reason}")]
    Invalid {
        /// Input name.
        name: String,
        /// The offending value (`***` for secrets), cut to 200 characters.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// Two inputs that exclude each other were both given.
    #[error("inputs `{first}` and `{second}` cannot be used together: {reason}")]
    Conflict {
        /// First input.
        first: String,
        /// Second input.
        second: String,
        /// Why.
        reason: String,
    },
    /// A `*-file` input names a file that cannot be read.
    #[error("input `{name}`: cannot read file `{path}`: {source}")]
    File {
        /// Input name.
        name: String,
        /// Path as given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl InputError {
    /// Builds an [`InputError::Invalid`], cutting long values.
    pub fn invalid(name: &str, value: &str, reason: impl Into<String>) -> Self {
        let mut v: String = value.chars().take(200).collect();
        if v.len() < value.len() {
            v.push('…');
        }
        Self::Invalid {
            name: name.to_string(),
            value: v,
            reason: reason.into(),
        }
    }

    /// The input this error is about.
    pub fn input_name(&self) -> &str {
        match self {
            Self::Required { name } | Self::Invalid { name, .. } | Self::File { name, .. } => name,
            Self::Conflict { first, .. } => first,
        }
    }
}

/// The environment variable name the runner uses for an input.
pub fn env_name(input: &str) -> String {
    format!("INPUT_{}", input.replace(' ', "_").to_uppercase())
}

/// Parses a YAML 1.2 core-schema boolean, as `core.getBooleanInput`.
pub fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// The inputs of one step: CLI flags over `INPUT_*` over table defaults.
#[derive(Clone, Debug)]
pub struct Inputs {
    spec: Option<&'static ActionSpec>,
    flags: BTreeMap<String, Vec<String>>,
    env: Env,
    console: Console,
    workspace: Option<PathBuf>,
}

impl Inputs {
    /// Creates the reader. `flags` maps input names to the values given on the command line.
    pub fn new(
        spec: Option<&'static ActionSpec>,
        flags: BTreeMap<String, Vec<String>>,
        env: Env,
        console: Console,
    ) -> Self {
        let workspace = env.get("GITHUB_WORKSPACE").map(PathBuf::from);
        Self {
            spec,
            flags,
            env,
            console,
            workspace,
        }
    }

    fn default_of(&self, name: &str) -> Option<&'static str> {
        match self.spec {
            Some(spec) => spec.input(name).and_then(|i| i.default),
            None => COMMON_INPUTS
                .iter()
                .find(|i| i.name == name)
                .and_then(|i| i.default),
        }
    }

    fn aliases_of(&self, name: &str) -> &'static [&'static str] {
        self.spec
            .and_then(|s| s.input(name))
            .map(|i| i.aliases)
            .unwrap_or(&[])
    }

    /// Whether the input was given at all (flag or non-empty env), ignoring defaults.
    pub fn is_given(&self, name: &str) -> bool {
        self.given(name).is_some()
    }

    fn given(&self, name: &str) -> Option<String> {
        if let Some(values) = self.flags.get(name) {
            let joined = values.join("\n");
            let t = joined.trim();
            if !t.is_empty() {
                return Some(t.to_string());
            }
        }
        for n in std::iter::once(name).chain(self.aliases_of(name).iter().copied()) {
            if let Some(v) = self.env.raw(&env_name(n)) {
                let t = v.trim();
                if !t.is_empty() {
                    return Some(t.to_string());
                }
            }
        }
        None
    }

    /// The trimmed value, or the default, or `None`.
    pub fn string(&self, name: &str) -> Option<String> {
        self.given(name)
            .or_else(|| self.default_of(name).map(str::to_string))
    }

    /// The untrimmed value of a flag or `INPUT_*` (for inputs where whitespace matters).
    pub fn string_untrimmed(&self, name: &str) -> Option<String> {
        if let Some(values) = self.flags.get(name) {
            return Some(values.join("\n"));
        }
        self.env
            .raw(&env_name(name))
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
    }

    /// A required value.
    pub fn required(&self, name: &str) -> Result<String, InputError> {
        self.string(name).ok_or_else(|| InputError::Required {
            name: name.to_string(),
        })
    }

    /// A boolean; absent means the default, or `false`.
    pub fn bool(&self, name: &str) -> Result<bool, InputError> {
        Ok(self.opt_bool(name)?.unwrap_or(false))
    }

    /// A boolean, `None` when absent and without default.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, InputError> {
        match self.string(name) {
            None => Ok(None),
            Some(v) => parse_bool(&v).map(Some).ok_or_else(|| {
                InputError::invalid(
                    name,
                    &v,
                    "not a boolean; use true or false (YAML 1.2 core schema: true | True | TRUE | false | False | FALSE)",
                )
            }),
        }
    }

    /// Newline-separated list (`getMultilineInput`): lines trimmed, empty lines dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        split_lines(self.string(name).as_deref().unwrap_or(""))
    }

    /// A list separated by newlines **and** commas (only for inputs documented so).
    pub fn list_comma(&self, name: &str) -> Vec<String> {
        self.list(name)
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// A list parsed like the docker actions' `getInputList` (CSV records, `#` comments at line
    /// start, relaxed quotes); see [`crate::csvlist`].
    pub fn csv_list(&self, name: &str, ignore_comma: bool) -> Result<Vec<String>, InputError> {
        // `core.getInput` trims the whole value first, as here.
        match self.string(name) {
            None => Ok(Vec::new()),
            Some(v) => crate::csvlist::csv_list(&v, ignore_comma)
                .map_err(|reason| InputError::invalid(name, &v, reason)),
        }
    }

    /// A duration (`90s`, `5m`, `1h30m`, or seconds).
    pub fn duration(&self, name: &str) -> Result<Option<Duration>, InputError> {
        match self.string(name) {
            None => Ok(None),
            Some(v) => crate::duration::parse_duration(&v)
                .map(Some)
                .ok_or_else(|| {
                    InputError::invalid(
                        name,
                        &v,
                        "not a duration; use e.g. 90s, 5m, 1h30m or a number of seconds",
                    )
                }),
        }
    }

    /// A size in bytes (`500M`, `2G`, `16MiB`, or bytes); see [`crate::size`].
    pub fn size(&self, name: &str) -> Result<Option<u64>, InputError> {
        match self.string(name) {
            None => Ok(None),
            Some(v) => crate::size::parse_size(&v).map(Some).ok_or_else(|| {
                InputError::invalid(
                    name,
                    &v,
                    "not a size; use e.g. 500M, 2G, 16MiB or a number of bytes",
                )
            }),
        }
    }

    /// A number of any `FromStr` type.
    pub fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>, InputError> {
        match self.string(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|_| InputError::invalid(name, &v, "not a valid number")),
        }
    }

    /// One of a fixed set of words.
    pub fn choice(&self, name: &str, allowed: &[&str]) -> Result<Option<String>, InputError> {
        match self.string(name) {
            None => Ok(None),
            Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v)),
            Some(v) => Err(InputError::invalid(
                name,
                &v,
                format!("expected one of: {}", allowed.join(", ")),
            )),
        }
    }

    /// A secret: masked (`::add-mask::`, every line) before it is returned.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        let v = self.string(name)?;
        self.console.add_mask(&v);
        Some(Secret::new(v))
    }

    /// A bearer token (GitHub, Slack, registry): a secret that must travel in an HTTP header, so
    /// one line of visible ASCII. Masked before it is checked; the error never shows it.
    pub fn token(&self, name: &str) -> Result<Option<Secret>, InputError> {
        let Some(t) = self.secret(name) else {
            return Ok(None);
        };
        if let Some(bad) = t.expose().chars().find(|c| !c.is_ascii_graphic()) {
            let what = match bad {
                '\n' | '\r' => "a line break (a multi-line secret?)".to_string(),
                c if c.is_whitespace() => "whitespace".to_string(),
                c => format!("the character U+{:04X}", c as u32),
            };
            return Err(InputError::invalid(
                name,
                "***",
                format!("a token must be one line of visible ASCII, this one contains {what}"),
            ));
        }
        Ok(Some(t))
    }

    /// A value given either inline (`name`) or as a file (`name-file`); both is an error.
    /// The file path is resolved against `GITHUB_WORKSPACE` when relative.
    pub fn text_or_file(&self, name: &str) -> Result<Option<String>, InputError> {
        let file_input = format!("{name}-file");
        let inline = self.string(name);
        let file = self.string(&file_input);
        match (inline, file) {
            (Some(_), Some(_)) => Err(InputError::Conflict {
                first: name.to_string(),
                second: file_input,
                reason: "give the value inline or as a file, not both".into(),
            }),
            (Some(v), None) => Ok(Some(v)),
            (None, Some(path)) => {
                let p = self.resolve_path(&path);
                std::fs::read_to_string(&p)
                    .map(Some)
                    .map_err(|source| InputError::File {
                        name: file_input,
                        path,
                        source,
                    })
            }
            (None, None) => Ok(None),
        }
    }

    /// Like [`Inputs::text_or_file`], for secrets: masked as soon as read.
    pub fn secret_or_file(&self, name: &str) -> Result<Option<Secret>, InputError> {
        let v = self.text_or_file(name)?;
        Ok(v.map(|v| {
            self.console.add_mask(v.trim());
            Secret::new(v)
        }))
    }

    /// Resolves a path input against `GITHUB_WORKSPACE` (or the current directory).
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            return p;
        }
        match &self.workspace {
            Some(ws) => ws.join(p),
            None => p,
        }
    }
}

/// Splits on newlines, trims each line, drops empty ones.
pub fn split_lines(value: &str) -> Vec<String> {
    value
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{InputKind, InputSpec, OutputSpec};
    use crate::mask::Masker;

    static INPUTS: &[InputSpec] = &[
        InputSpec::new("build-args", InputKind::List, "args"),
        InputSpec::new("push", InputKind::Bool, "push").default("false"),
        InputSpec::new("timeout", InputKind::Duration, "t").default("5m"),
        InputSpec::new("token", InputKind::String, "t").secret(),
        InputSpec::new("channel id", InputKind::String, "c"),
        InputSpec::new("channel", InputKind::String, "c").aliases(&["channel-id-old"]),
        InputSpec::new("payload", InputKind::String, "p"),
        InputSpec::new("payload-file", InputKind::Path, "p"),
    ];
    static OUTPUTS: &[OutputSpec] = &[];
    static SPEC: ActionSpec = ActionSpec {
        name: "x",
        title: "x",
        description: "x",
        help: "",
        inputs: INPUTS,
        outputs: OUTPUTS,
        icon: "box",
        color: "blue",
    };

    fn reader(env: &[(&str, &str)], flags: &[(&str, &str)]) -> Inputs {
        let mut f: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in flags {
            f.entry(k.to_string()).or_default().push(v.to_string());
        }
        let console = Console::with_sink(Box::new(std::io::sink()), Masker::default(), false, true);
        Inputs::new(
            Some(&SPEC),
            f,
            Env::from_pairs(env.iter().copied()),
            console,
        )
    }

    #[test]
    fn env_names_keep_hyphens() {
        assert_eq!(env_name("build-args"), "INPUT_BUILD-ARGS");
        assert_eq!(env_name("channel id"), "INPUT_CHANNEL_ID");
        let r = reader(&[("INPUT_CHANNEL_ID", " C1 ")], &[]);
        assert_eq!(r.string("channel id").as_deref(), Some("C1"));
    }

    #[test]
    fn flag_wins_over_env_and_empty_is_absent() {
        let r = reader(
            &[("INPUT_PUSH", "true"), ("INPUT_PAYLOAD", "   ")],
            &[("push", "false")],
        );
        assert!(!r.bool("push").unwrap());
        assert_eq!(r.string("payload"), None);
        assert!(!r.is_given("payload"));
    }

    #[test]
    fn defaults_apply_when_absent() {
        let r = reader(&[], &[]);
        assert_eq!(
            r.duration("timeout").unwrap(),
            Some(Duration::from_secs(300))
        );
        assert!(!r.bool("push").unwrap());
        assert!(!r.bool("dry-run").unwrap());
    }

    #[test]
    fn required_message_matches_actions_core() {
        let r = reader(&[], &[]);
        assert_eq!(
            r.required("payload").unwrap_err().to_string(),
            "Input required and not supplied: payload"
        );
    }

    #[test]
    fn booleans_are_yaml_1_2_only() {
        for ok in ["true", "True", "TRUE"] {
            assert!(reader(&[("INPUT_PUSH", ok)], &[]).bool("push").unwrap());
        }
        for bad in ["yes", "on", "1", "tRUE", "y"] {
            let e = reader(&[("INPUT_PUSH", bad)], &[])
                .bool("push")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("`push`") && e.contains(&format!("`{bad}`")),
                "{e}"
            );
        }
    }

    #[test]
    fn lists_split_on_newlines_only() {
        let r = reader(&[("INPUT_BUILD-ARGS", "A=1,2\n\n  B=3  \r\n")], &[]);
        assert_eq!(r.list("build-args"), vec!["A=1,2", "B=3"]);
        assert_eq!(r.list_comma("build-args"), vec!["A=1", "2", "B=3"]);
        let r = reader(&[], &[("build-args", "A=1"), ("build-args", "B=2")]);
        assert_eq!(r.list("build-args"), vec!["A=1", "B=2"]);
    }

    #[test]
    fn durations_invalid_name_the_input() {
        let e = reader(&[("INPUT_TIMEOUT", "soon")], &[])
            .duration("timeout")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`timeout`") && e.contains("`soon`"));
    }

    #[test]
    fn secrets_are_masked_when_read() {
        let r = reader(&[("INPUT_TOKEN", "xoxb-secret-1")], &[]);
        let s = r.secret("token").unwrap();
        assert_eq!(s.expose(), "xoxb-secret-1");
        assert!(r.console.masker().leaks("a xoxb-secret-1"));
    }

    #[test]
    fn tokens_are_one_line() {
        let r = reader(&[("INPUT_TOKEN", "ghp_abc\ndef")], &[]);
        let e = r.token("token").unwrap_err().to_string();
        assert!(
            e.contains("`token`") && e.contains("line break") && !e.contains("ghp_abc"),
            "{e}"
        );
        assert!(r.console.masker().leaks("x def y") || r.console.masker().leaks("ghp_abc\ndef"));
        let r = reader(&[("INPUT_TOKEN", "ghp_abcdef")], &[]);
        assert_eq!(r.token("token").unwrap().unwrap().expose(), "ghp_abcdef");
    }

    #[test]
    fn aliases_are_read() {
        let r = reader(&[("INPUT_CHANNEL-ID-OLD", "C9")], &[]);
        assert_eq!(r.string("channel").as_deref(), Some("C9"));
    }

    #[test]
    fn text_or_file() {
        let dir = std::env::temp_dir().join(format!("gantry-in-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("p.json"), "{\"a\":1}").unwrap();
        let ws = dir.to_str().unwrap();
        let r = reader(
            &[("GITHUB_WORKSPACE", ws), ("INPUT_PAYLOAD-FILE", "p.json")],
            &[],
        );
        assert_eq!(
            r.text_or_file("payload").unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        let r = reader(
            &[
                ("GITHUB_WORKSPACE", ws),
                ("INPUT_PAYLOAD-FILE", "p.json"),
                ("INPUT_PAYLOAD", "{}"),
            ],
            &[],
        );
        assert!(matches!(
            r.text_or_file("payload"),
            Err(InputError::Conflict { .. })
        ));
        let r = reader(
            &[
                ("GITHUB_WORKSPACE", ws),
                ("INPUT_PAYLOAD-FILE", "missing.json"),
            ],
            &[],
        );
        let e = r.text_or_file("payload").unwrap_err().to_string();
        assert!(e.contains("payload-file") && e.contains("missing.json"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
