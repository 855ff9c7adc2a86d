//! The rules in force: the built-in file, then each `--rules` file in
//! order (a rule with the id of an earlier one replaces it; `disable`
//! turns earlier ones off; lists of the same name are merged), then the
//! names of `--deny-comm`; compiled for matching.

use std::{collections::BTreeMap, path::PathBuf, sync::Arc};

use super::{
    matching::Matcher,
    rule_file::{self, OncePer, RuleFile, RuleFileError, RuleSpec, Severity, StateSpec},
    sqpoll::SqpollWatch,
};

/// The built-in rules (docs/rules.md describes each).
pub const BUILTIN_RULES: &str = include_str!("builtin.json");
/// How errors name the built-in file.
const BUILTIN_ORIGIN: &str = "built-in rules (uringtrace/src/alerts/builtin.json)";
/// The list `--deny-comm` adds to, which the built-in rule `deny-comm` uses.
pub const DENY_COMM_LIST: &str = "deny_comm";

/// What an alert says about its rule.
#[derive(Debug, PartialEq, Eq)]
pub struct RuleMeta {
    pub id: String,
    pub severity: Severity,
    pub mitre: String,
    pub explanation: String,
}

pub enum Stateful {
    Sqpoll(SqpollWatch),
}

pub struct Rule {
    pub meta: Arc<RuleMeta>,
    pub enabled: bool,
    pub matcher: Matcher,
    pub once_per: OncePer,
    pub state: Option<Stateful>,
}

pub struct RuleSet {
    pub rules: Vec<Rule>,
}

/// Where the rules come from.
#[derive(Debug, Default, Clone)]
pub struct RuleSources {
    pub builtin: bool,
    pub files: Vec<PathBuf>,
    pub deny_comm: Vec<String>,
}

/// The rule files merged, before compiling: what `--print-rules` prints.
pub fn merge(sources: &RuleSources) -> Result<RuleFile, RuleFileError> {
    let mut merged = RuleFile::default();
    let mut files = Vec::new();
    if sources.builtin {
        files.push((
            BUILTIN_ORIGIN.to_string(),
            rule_file::parse(BUILTIN_ORIGIN, BUILTIN_RULES)?,
        ));
    }
    for path in &sources.files {
        files.push((path.display().to_string(), rule_file::read(path)?));
    }
    for (origin, file) in files {
        for id in &file.disable {
            let rule = merged
                .rules
                .iter_mut()
                .find(|r| r.id == *id)
                .ok_or_else(|| RuleFileError::Invalid {
                    origin: origin.clone(),
                    message: format!(
                        "`disable` names rule `{id}`, which no earlier rule file defines"
                    ),
                })?;
            rule.enabled = false;
        }
        for (name, entries) in file.lists {
            let list = merged.lists.entry(name).or_default();
            for entry in entries {
                if !list.contains(&entry) {
                    list.push(entry);
                }
            }
        }
        for rule in file.rules {
            match merged.rules.iter_mut().find(|r| r.id == rule.id) {
                Some(old) => *old = rule,
                None => merged.rules.push(rule),
            }
        }
    }
    if !sources.deny_comm.is_empty() {
        let list = merged.lists.entry(DENY_COMM_LIST.to_string()).or_default();
        for name in &sources.deny_comm {
            if !list.contains(name) {
                list.push(name.clone());
            }
        }
    }
    Ok(merged)
}

/// Merges and compiles the rules.
pub fn load(sources: &RuleSources) -> Result<RuleSet, RuleFileError> {
    let merged = merge(sources)?;
    compile(&merged)
}

pub fn compile(file: &RuleFile) -> Result<RuleSet, RuleFileError> {
    let lists: &BTreeMap<String, Vec<String>> = &file.lists;
    let look = |name: &str| lists.get(name).map(Vec::as_slice);
    let rules = file
        .rules
        .iter()
        .map(|spec: &RuleSpec| {
            let matcher = Matcher::compile(&spec.conditions, &look).map_err(|message| {
                RuleFileError::Invalid {
                    origin: "the rule files".into(),
                    message: format!("rule `{}`: {message}", spec.id),
                }
            })?;
            Ok(Rule {
                meta: Arc::new(RuleMeta {
                    id: spec.id.to_string(),
                    severity: spec.severity,
                    mitre: spec.mitre.to_string(),
                    explanation: spec.explanation.to_string(),
                }),
                enabled: spec.enabled,
                matcher,
                once_per: spec.once_per,
                state: spec.state.as_ref().map(|s| match s {
                    StateSpec::SqpollWithoutEnter { min_requests } => {
                        Stateful::Sqpoll(SqpollWatch::new(min_requests.0))
                    }
                }),
            })
        })
        .collect::<Result<_, RuleFileError>>()?;
    Ok(RuleSet { rules })
}

/// `--print-rules`: the merged rule file, pretty JSON.
pub fn render(file: &RuleFile) -> String {
    // Serializing our own structs (string keys only) cannot fail.
    let mut text = serde_json::to_string_pretty(file).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_parse_and_compile() {
        let sources = RuleSources {
            builtin: true,
            ..Default::default()
        };
        let set = load(&sources).expect("the built-in rules are valid");
        let ids: Vec<&str> = set.rules.iter().map(|r| r.meta.id.as_str()).collect();
        for id in [
            "file-open",
            "file-delete",
            "file-rename-link",
            "net-connect",
            "sqpoll-io-without-enter",
            "personality-registered",
            "request-under-personality",
            "deny-comm",
        ] {
            assert!(ids.contains(&id), "no built-in rule {id}: {ids:?}");
        }
        // --print-rules output reads back as the same rules.
        let merged = merge(&sources).unwrap();
        let again = rule_file::parse("printed", &render(&merged)).unwrap();
        assert_eq!(again.rules.len(), merged.rules.len());
    }

    fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn user_files_replace_disable_and_extend() {
        let dir = std::env::temp_dir().join(format!("uringtrace-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = write(
            &dir,
            "a.json",
            r#"{"lists": {"deny_comm": ["nginx"]},
                "disable": ["file-delete"],
                "rules": [{"id": "file-open", "severity": "high", "mitre": "T1005",
                           "explanation": "tuned", "match": {"event": ["submit"], "opcode": ["openat"], "path": ["/etc/*"]}}]}"#,
        );
        let merged = merge(&RuleSources {
            builtin: true,
            files: vec![a],
            deny_comm: vec!["sshd".into()],
        })
        .unwrap();
        let open = merged
            .rules
            .iter()
            .find(|r| r.id.as_str() == "file-open")
            .unwrap();
        assert_eq!(open.severity, Severity::High);
        let delete = merged
            .rules
            .iter()
            .find(|r| r.id.as_str() == "file-delete")
            .unwrap();
        assert!(!delete.enabled);
        assert_eq!(merged.lists[DENY_COMM_LIST], ["nginx", "sshd"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = |text: &str| rule_file::parse("f.json", text).unwrap_err().to_string();
        let e = err("{\"rules\": [{\"id\": \"x\", \"sevrity\": \"high\"}]}");
        assert!(e.starts_with("f.json:1:"), "{e}");
        assert!(e.contains("unknown field `sevrity`"), "{e}");
        let e = err(
            r#"{"rules": [{"id": "x", "severity": "urgent", "mitre": "T1005", "explanation": "e"}]}"#,
        );
        assert!(e.contains("urgent"), "{e}");
        let e = err(
            r#"{"rules": [{"id": "x", "severity": "low", "mitre": "1005", "explanation": "e"}]}"#,
        );
        assert!(e.contains("not a MITRE ATT&CK technique id"), "{e}");
        let e = err(
            r#"{"rules": [{"id": "x", "severity": "low", "mitre": "T1005", "explanation": "e",
                "match": {"opcode": ["OPENNAT"]}}]}"#,
        );
        assert!(e.starts_with("f.json:2:") && e.contains("OPENNAT"), "{e}");
        let e = err(
            r#"{"rules": [{"id": "x", "severity": "low", "mitre": "T1005", "explanation": "e",
                "match": {"event": ["open"]}}]}"#,
        );
        assert!(e.contains("unknown event kind `open`"), "{e}");
        let e = err("{\"rules\": [");
        assert!(e.starts_with("f.json:1:"), "{e}");
        let two = r#"{"rules": [{"id": "x", "severity": "low", "mitre": "T1005", "explanation": "e"},
                               {"id": "x", "severity": "low", "mitre": "T1005", "explanation": "e"}]}"#;
        assert!(err(two).contains("two rules have the id `x`"));
        let unknown_list = r#"{"rules": [{"id": "x", "severity": "low", "mitre": "T1005", "explanation": "e",
                "match": {"comm": ["@nolist"]}}]}"#;
        let file = rule_file::parse("f.json", unknown_list).unwrap();
        let e = compile(&file)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("`@nolist`"), "{e}");
    }
}
