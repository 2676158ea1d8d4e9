//! The statuses a SCORM 2004 LMS determines itself (RTE 4.2.4.1 and 4.2.22.1): when the
//! package sets a scaled passing score and the SCO reports a scaled score, the success
//! status is the LMS's to decide (passed at or above it, failed below), whatever the SCO
//! set; likewise the completion status from the completion threshold and the progress
//! measure. Content written for this rule (the advanced golf example among it) reports
//! only a score and relies on the LMS, so the mapping sees the evaluated model.
use super::datamodel::Model;
use super::ScormVersion;

fn number(m: &Model, element: &str) -> Option<f64> {
    m.get(element)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
}

/// Applies the LMS's evaluation to a SCORM 2004 model (a 1.2 model is left as it is: 1.2
/// has no such rule; its mastery score is the SCO's to apply).
pub fn evaluate(version: ScormVersion, m: &mut Model) {
    if version != ScormVersion::Scorm2004 {
        return;
    }
    if let (Some(passing), Some(scaled)) = (
        number(m, "cmi.scaled_passing_score"),
        number(m, "cmi.score.scaled"),
    ) {
        let status = if scaled >= passing {
            "passed"
        } else {
            "failed"
        };
        m.insert("cmi.success_status".into(), status.into());
    }
    if let (Some(threshold), Some(progress)) = (
        number(m, "cmi.completion_threshold"),
        number(m, "cmi.progress_measure"),
    ) {
        let status = if progress >= threshold {
            "completed"
        } else {
            "incomplete"
        };
        m.insert("cmi.completion_status".into(), status.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(pairs: &[(&str, &str)]) -> Model {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// RTE 4.2.22.1: scaled score against the scaled passing score decides success.
    #[test]
    fn rte_4_2_22_success_follows_the_scaled_passing_score() {
        let mut m = model(&[
            ("cmi.scaled_passing_score", "0.8"),
            ("cmi.score.scaled", "0.8"),
            ("cmi.success_status", "failed"),
        ]);
        evaluate(ScormVersion::Scorm2004, &mut m);
        assert_eq!(m["cmi.success_status"], "passed");
        m.insert("cmi.score.scaled".into(), "0.79".into());
        evaluate(ScormVersion::Scorm2004, &mut m);
        assert_eq!(m["cmi.success_status"], "failed");
    }

    /// Without a score, or without a passing score, the SCO's own status stands.
    #[test]
    fn rte_4_2_22_without_both_values_the_sco_decides() {
        let mut m = model(&[
            ("cmi.score.scaled", "0.1"),
            ("cmi.success_status", "passed"),
        ]);
        evaluate(ScormVersion::Scorm2004, &mut m);
        assert_eq!(m["cmi.success_status"], "passed");
        let mut m = model(&[("cmi.scaled_passing_score", "0.5")]);
        evaluate(ScormVersion::Scorm2004, &mut m);
        assert!(!m.contains_key("cmi.success_status"));
    }

    /// RTE 4.2.4.1: progress measure against the completion threshold decides completion.
    #[test]
    fn rte_4_2_4_completion_follows_the_threshold() {
        let mut m = model(&[
            ("cmi.completion_threshold", "0.5"),
            ("cmi.progress_measure", "0.25"),
            ("cmi.completion_status", "completed"),
        ]);
        evaluate(ScormVersion::Scorm2004, &mut m);
        assert_eq!(m["cmi.completion_status"], "incomplete");
    }

    /// SCORM 1.2 has no such rule.
    #[test]
    fn scorm_12_is_left_alone() {
        let mut m = model(&[
            ("cmi.scaled_passing_score", "0.8"),
            ("cmi.score.scaled", "0.9"),
        ]);
        evaluate(ScormVersion::Scorm12, &mut m);
        assert!(!m.contains_key("cmi.success_status"));
    }
}
