//! Detections: rules (data, docs/rules.md) evaluated on every decoded
//! event, each match an `alert` record. The rules come from a built-in
//! file embedded in the binary and from the user's `--rules` files.
//!
//! - [`rule_file`]: the file format, parsed strictly;
//! - [`rule_set`]: the built-in rules and the user's, merged and compiled;
//! - [`matching`]: one event against one rule's conditions;
//! - [`sqpoll`]: the state of the SQPOLL rule kind;
//! - [`alert`]: the alert, a decoded value the formatters show.

pub mod alert;
pub mod matching;
pub mod monitor;
pub mod rule_file;
pub mod rule_set;
pub mod sqpoll;

use std::collections::HashSet;

use self::{
    alert::Alert,
    matching::Facts,
    rule_file::OncePer,
    rule_set::{Rule, RuleSet, Stateful},
};
use crate::{cli::TraceArgs, event::Event, format::Formatter, output::Output};

/// Keys a rule remembers for `once_per` before it starts afresh: a
/// monitor runs for days, its memory must not grow with every request.
const MAX_REMEMBERED: usize = 65_536;

/// The rules and what they remember across events.
pub struct Engine {
    rules: Vec<Rule>,
    /// Per rule: the keys (request, ring, pid) it already fired for.
    fired: Vec<HashSet<u64>>,
}

impl Engine {
    pub fn new(set: RuleSet) -> Self {
        let rules: Vec<Rule> = set.rules.into_iter().filter(|r| r.enabled).collect();
        Self {
            fired: rules.iter().map(|_| HashSet::new()).collect(),
            rules,
        }
    }

    /// Runs every rule on `event`; hands over each alert it raises.
    pub fn evaluate(&mut self, event: &Event, emit: &mut impl FnMut(Alert)) {
        let facts = Facts::of(event);
        for (rule, fired) in self.rules.iter_mut().zip(&mut self.fired) {
            let matches = rule.matcher.matches(&facts);
            let streak = match &mut rule.state {
                Some(Stateful::Sqpoll(watch)) => match watch.observe(event, matches) {
                    Some(n) => Some(n),
                    None => continue,
                },
                None if matches => None,
                None => continue,
            };
            let key = match rule.once_per {
                OncePer::Event => None,
                OncePer::Request => facts.req,
                OncePer::Ring => facts.ring.map(u64::from),
                OncePer::Process => Some(u64::from(facts.task.pid)),
                OncePer::Session => Some(0),
            };
            if let Some(key) = key {
                if fired.len() >= MAX_REMEMBERED {
                    fired.clear();
                }
                if !fired.insert(key) {
                    continue;
                }
            }
            emit(Alert::new(&rule.meta, &facts, streak));
        }
    }
}

/// The alert stage of a session: the engine, and whether the events
/// themselves are shown too (`--alerts`) or only the alerts (`monitor`).
pub struct AlertStage {
    pub engine: Engine,
    pub events_shown: bool,
    /// Alerts raised (written or dropped by the output queue).
    pub raised: u64,
}

impl AlertStage {
    /// Evaluates the rules on `event` and queues its alerts.
    pub fn check(
        &mut self,
        event: &Event,
        formatter: &Formatter,
        output: &mut Output,
    ) -> anyhow::Result<()> {
        let mut result = Ok(());
        let raised = &mut self.raised;
        self.engine.evaluate(event, &mut |alert| {
            *raised += 1;
            if result.is_ok() {
                result = output.event(|line| formatter.write_alert(&alert, line));
            }
        });
        result
    }
}

/// The alert stage a session runs with: none unless `--alerts`, `--rules`,
/// `--deny-comm` or `monitor` asked for rules. Fails on a bad rule file.
pub fn stage(args: &TraceArgs) -> anyhow::Result<Option<AlertStage>> {
    let rules = &args.rules;
    let wanted = args.alerts
        || args.alerts_only
        || !rules.files.is_empty()
        || !rules.deny_comm.is_empty()
        || rules.no_builtin_rules;
    if !wanted {
        return Ok(None);
    }
    let set = rule_set::load(&monitor::sources(rules))?;
    let enabled = set.rules.iter().filter(|r| r.enabled).count();
    if enabled == 0 {
        anyhow::bail!(
            "no rule is enabled: nothing to detect (check --rules, --no-builtin-rules and `disable`)"
        );
    }
    Ok(Some(AlertStage {
        engine: Engine::new(set),
        events_shown: !args.alerts_only,
        raised: 0,
    }))
}
