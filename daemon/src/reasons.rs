//! The severity of a stored reason, as the mappings' [`Severity`] enum.
//! The spool keeps its name (`fatal`, `warning`: the names the mappings
//! serialise it to); the daemon writes and reads that name here and nowhere
//! else, so no module compares strings to `"fatal"`.

use quai_mappings::Severity;
use quai_spool::Reason;

/// The name the spool stores for a severity.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Fatal => "fatal",
        Severity::Warning => "warning",
    }
}

/// The severity of a stored reason. Only `fatal` rejects: a name this
/// version does not know is read as a warning, as it always was.
pub fn severity_of(r: &Reason) -> Severity {
    if r.severity == severity_name(Severity::Fatal) {
        Severity::Fatal
    } else {
        Severity::Warning
    }
}

/// Does this stored reason reject its invoice?
pub fn is_fatal(r: &Reason) -> bool {
    severity_of(r) == Severity::Fatal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(severity: &str) -> Reason {
        Reason {
            rule: "BR-01".into(),
            term: "BT-24".into(),
            severity: severity.into(),
            message: "m".into(),
        }
    }

    #[test]
    fn names_round_trip_and_match_the_mappings_serialisation() {
        for s in [Severity::Fatal, Severity::Warning] {
            assert_eq!(severity_of(&reason(severity_name(s))), s);
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(severity_name(s))
            );
        }
        assert!(is_fatal(&reason("fatal")));
        assert!(!is_fatal(&reason("warning")));
        assert!(!is_fatal(&reason("odd")));
    }
}
