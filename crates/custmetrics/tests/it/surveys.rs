//! Survey and helpdesk exports as the tools write them (issue 18, items 4, 5 and 10): labelled
//! answers, question-text headers, the choice of the customer key, and unreadable answers.

use std::path::Path;

use custmetrics::Error;
use custmetrics::io::{
    ColumnMapping, Dataset, DatasetSpec, LoadOptions, RejectReason, Role, TableKind, col,
    load_table,
};
use custmetrics::report::{Report, ReportOptions, Section};

const NPS_QUESTION: &str = "How likely are you to recommend Acme to a friend or colleague?";
const CSAT_QUESTION: &str = "How satisfied were you with your support experience?";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn report(interactions: String) -> Report {
    let mut spec = DatasetSpec::default();
    spec.interactions = vec![interactions];
    let data = Dataset::load(&spec).unwrap();
    Report::build(&data, &ReportOptions::default()).unwrap()
}

fn distinct_customers(t: &custmetrics::io::Table) -> usize {
    t.frame
        .column(col::CUSTOMER_ID)
        .unwrap()
        .n_unique()
        .unwrap()
}

#[test]
fn survey_tool_nps_with_question_header_and_labelled_answers() {
    let dir = tempfile::tempdir().unwrap();
    // 4 promoters (two "10 - Extremely likely", a 9, a labelled 9 with an en dash), 2 passives
    // (8, 7), 2 detractors ("0 - Not at all likely", 5): NPS = (4 - 2) / 8 = +25. Rejecting the
    // labelled answers, as before, left 9, 8, 7, 5: (1 - 1) / 4 = 0.
    let file = write(
        dir.path(),
        "survey.csv",
        &format!(
            "Respondent email,Submitted at,\"{NPS_QUESTION}\",What is the main reason for your score?\n\
             a@x.com,2024-03-01,10 - Extremely likely,great\n\
             b@x.com,2024-03-01,10 - Extremely likely,\n\
             c@x.com,2024-03-02,9,fast\n\
             d@x.com,2024-03-02,9 \u{2013} Very likely,\n\
             e@x.com,2024-03-03,8,ok\n\
             f@x.com,2024-03-03,7,\n\
             g@x.com,2024-03-04,0 - Not at all likely,slow\n\
             h@x.com,2024-03-04,5,meh\n"
        ),
    );
    let t = load_table(TableKind::Interactions, &[&file], &LoadOptions::default()).unwrap();
    assert_eq!(t.files[0].columns.column(Role::Nps), Some(NPS_QUESTION));
    assert_eq!(
        (t.accounting.rows_used, t.accounting.answers_rejected),
        (8, 0)
    );
    let r = report(file);
    let nps = r.nps.expect("an NPS section").overall;
    assert_eq!(
        (nps.promoters, nps.passives, nps.detractors, nps.responses),
        (4, 2, 2, 8)
    );
    assert!((nps.score - 25.0).abs() < 1e-9, "{}", nps.score);
}

#[test]
fn verbal_csat_under_a_question_header() {
    let dir = tempfile::tempdir().unwrap();
    // 5, 4, 3, 2, 1, 3: mean 18 / 6 = 3; satisfied (4 or 5) 2 of 6.
    let file = write(
        dir.path(),
        "csat.csv",
        &format!(
            "Email,Date,\"{CSAT_QUESTION}\",Satisfaction comment\n\
             a@x.com,2024-03-01,Very satisfied,Good\n\
             b@x.com,2024-03-01,Satisfied,\n\
             c@x.com,2024-03-02,Neutral,\n\
             d@x.com,2024-03-02,Dissatisfied,Bad\n\
             e@x.com,2024-03-03,Very dissatisfied,\n\
             f@x.com,2024-03-03,Neither satisfied nor dissatisfied,\n"
        ),
    );
    let t = load_table(TableKind::Interactions, &[&file], &LoadOptions::default()).unwrap();
    assert_eq!(t.files[0].columns.column(Role::Csat), Some(CSAT_QUESTION));
    let csat: Vec<Option<i32>> = t
        .frame
        .column(col::CSAT)
        .unwrap()
        .i32()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        csat,
        [5, 4, 3, 2, 1, 3].map(Some).to_vec(),
        "the comment column is not the score"
    );
    let c = report(file).csat.expect("a CSAT section").overall;
    assert_eq!((c.satisfied, c.responses), (2, 6));
    assert!((c.mean - 3.0).abs() < 1e-9);
    // On a 7-point scale the 5-point labels name no point: each answer is rejected, rows kept.
    let mut options = LoadOptions::default();
    options.csat_scale = 7;
    options.mapping = ColumnMapping::default().with(Role::Csat, CSAT_QUESTION);
    let file = dir.path().join("csat.csv");
    let t = load_table(TableKind::Interactions, &[file.to_str().unwrap()], &options).unwrap();
    assert_eq!(
        (t.accounting.rows_used, t.accounting.answers_rejected),
        (6, 6)
    );
    assert_eq!(
        t.answer_rejections[0].reason,
        RejectReason::CsatLabelOffScale
    );
}

#[test]
fn without_a_score_column_the_skip_reason_names_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "q.csv",
        "email,date,Q1,Q2,Ticket ID\n\
         a@x.com,2024-03-01,9,yes,101\n\
         b@x.com,2024-03-02,10,no,102\n\
         c@x.com,2024-03-03,4,yes,103\n",
    );
    let r = report(file);
    assert!(r.nps.is_none());
    let reason = &r
        .skipped
        .iter()
        .find(|s| s.section == Section::Nps)
        .expect("NPS skipped")
        .reason;
    assert!(
        reason.contains("\"Q1\"") && !reason.contains("Ticket ID") && reason.contains("--nps-col"),
        "{reason}"
    );
}

#[test]
fn helpdesk_key_is_the_external_id_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    // Two customers named Ann Lee (C1, C2) and Bob Ray (C3, twice): 3 customers, not 2.
    let file = write(
        dir.path(),
        "tickets.csv",
        "Ticket ID,Requester,Requester external id,Requester email,Created at,Via\n\
         1,Ann Lee,C1,ann@one.com,2024-03-01,email\n\
         2,Ann Lee,C2,ann@two.com,2024-03-02,chat\n\
         3,Bob Ray,C3,bob@x.com,2024-03-03,email\n\
         4,Bob Ray,C3,bob@x.com,2024-03-04,email\n",
    );
    let t = load_table(TableKind::Interactions, &[&file], &LoadOptions::default()).unwrap();
    let columns = &t.files[0].columns;
    assert_eq!(
        columns.column(Role::CustomerId),
        Some("Requester external id")
    );
    assert_eq!(
        columns.alternatives(Role::CustomerId),
        ["Requester email", "Requester"]
    );
    assert_eq!(distinct_customers(&t), 3);
    let mut spec = DatasetSpec::default();
    spec.interactions = vec![file];
    let notes = Dataset::load(&spec).unwrap().column_notes();
    assert_eq!(
        notes,
        [
            "interactions: customer id: using \"Requester external id\" (also possible: \"Requester email\", \"Requester\"); set --customer-col to choose"
        ]
    );
}

#[test]
fn a_name_is_never_silently_the_customer_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "names.csv",
        "Ticket ID,Requester,Created at,Via\n\
         1,Ann Lee,2024-03-01,email\n\
         2,Ann Lee,2024-03-02,chat\n",
    );
    let err = load_table(TableKind::Interactions, &[&file], &LoadOptions::default()).unwrap_err();
    assert!(matches!(err, Error::NameAsCustomerId { .. }), "{err}");
    assert!(
        err.to_string().contains("\"Requester\"") && err.to_string().contains("customer_col"),
        "{err}"
    );
    // Mapped explicitly, the names are the user's choice.
    let mut options = LoadOptions::default();
    options.mapping = ColumnMapping::default().with(Role::CustomerId, "Requester");
    let t = load_table(TableKind::Interactions, &[&file], &options).unwrap();
    assert_eq!(distinct_customers(&t), 1);
    // A name header over e-mail addresses is an e-mail column (Zendesk's `Requester`).
    let file = write(
        dir.path(),
        "emails.csv",
        "Ticket ID,Requester,Created at\n1,ann@x.com,2024-03-01\n2,bob@x.com,2024-03-02\n",
    );
    let t = load_table(TableKind::Interactions, &[&file], &LoadOptions::default()).unwrap();
    assert_eq!(
        t.files[0].columns.column(Role::CustomerId),
        Some("Requester")
    );
}

#[test]
fn an_unreadable_answer_keeps_its_interaction() {
    let dir = tempfile::tempdir().unwrap();
    // 4 interactions: 3 by email, 1 by chat. The chat one's NPS is "n/a" and an email one's CSAT
    // is 9 on a 1-5 scale: both answers rejected, all 4 interactions counted.
    let file = write(
        dir.path(),
        "i.csv",
        "customer_id,date,channel,nps,csat\n\
         a,2024-03-01,email,9,5\n\
         b,2024-03-02,chat,n/a,4\n\
         c,2024-03-03,email,3,9\n\
         d,2024-03-04,email,,\n",
    );
    let t = load_table(TableKind::Interactions, &[&file], &LoadOptions::default()).unwrap();
    let a = &t.accounting;
    assert_eq!(
        (
            a.rows_read,
            a.rows_used,
            a.rows_rejected,
            a.answers_rejected
        ),
        (4, 4, 0, 2)
    );
    assert_eq!(a.answers_rejected_by_reason["unparsable_score"], 1);
    assert_eq!(a.answers_rejected_by_reason["csat_out_of_range"], 1);
    let located: Vec<(Option<u64>, &str, &str)> = t
        .answer_rejections
        .iter()
        .map(|r| (r.line, r.column.as_str(), r.value.as_str()))
        .collect();
    assert_eq!(located, [(Some(3), "nps", "n/a"), (Some(4), "csat", "9")]);
    let r = report(file);
    let by_channel: Vec<(&str, u64)> = r
        .overview
        .as_ref()
        .expect("an overview")
        .interactions_by_channel
        .iter()
        .map(|c| (c.channel.as_str(), c.interactions))
        .collect();
    assert_eq!(by_channel, [("chat", 1), ("email", 3)]);
    // The chat answer is no answer: NPS from 9 and 3 only.
    assert_eq!(r.nps.expect("NPS").overall.responses, 2);
}
