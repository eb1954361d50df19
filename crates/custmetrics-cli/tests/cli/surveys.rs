//! Survey and helpdesk exports as tools write them (issue 18, items 4, 5 and 10), through the
//! binary: the key-choice note, the refusal of names, unreadable answers under --strict and in
//! the rejects file, and what `inspect` shows.

use crate::{assert_code, json, run, stderr, stdout};

const TICKETS: &str = "Ticket ID,Requester,Requester external id,Requester email,Created at,Via\n\
     1,Ann Lee,C1,ann@one.com,2024-03-01,email\n\
     2,Ann Lee,C2,ann@two.com,2024-03-02,chat\n\
     3,Bob Ray,C3,bob@x.com,2024-03-03,email\n";

#[test]
fn the_customer_key_choice_is_a_note_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tickets.csv"), TICKETS).unwrap();
    let out = run(dir.path(), &["report", "-i", "tickets.csv", "-f", "json"]);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains(
            "note: interactions: customer id: using \"Requester external id\" (also possible: \"Requester email\", \"Requester\"); set --customer-col to choose\n"
        ),
        "{}",
        stderr(&out)
    );
    // Two Ann Lees are two customers.
    let v = json(&out);
    let chat_and_email: u64 = v["overview"]["interactions_by_channel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(chat_and_email, 3);
    // Choosing the column silences the note.
    let out = run(
        dir.path(),
        &[
            "report",
            "-i",
            "tickets.csv",
            "--customer-col",
            "Requester email",
            "-f",
            "json",
        ],
    );
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("note:"), "{}", stderr(&out));
}

#[test]
fn a_name_column_alone_is_refused_unless_chosen() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("names.csv"),
        "Ticket ID,Requester,Created at\n1,Ann Lee,2024-03-01\n2,Bob Ray,2024-03-02\n",
    )
    .unwrap();
    let out = run(dir.path(), &["report", "-i", "names.csv"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.starts_with("custmetrics: error: interactions: no customer id or e-mail column, only names: \"Requester\"")
            && err.contains("hint: choose the customer column with --customer-col interactions:\"Requester\""),
        "{err}"
    );
    assert!(stdout(&out).is_empty());
    let out = run(
        dir.path(),
        &[
            "report",
            "-i",
            "names.csv",
            "--customer-col",
            "Requester",
            "-f",
            "json",
            "-q",
        ],
    );
    assert_code(&out, 0);
}

#[test]
fn an_unreadable_answer_is_listed_and_strict_fails_on_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("i.csv"),
        "customer_id,date,channel,nps\n\
         a,2024-03-01,email,10 - Extremely likely\n\
         b,2024-03-02,chat,n/a\n\
         c,2024-03-03,email,0 - Not at all likely\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &[
            "report",
            "-i",
            "i.csv",
            "-f",
            "json",
            "--rejects",
            "rejects.csv",
        ],
    );
    let v = json(&out);
    let acc = &v["accounting"]["interactions"];
    assert_eq!(
        (
            acc["rows_used"].as_u64(),
            acc["rows_rejected"].as_u64(),
            acc["answers_rejected"].as_u64()
        ),
        (Some(3), Some(0), Some(1))
    );
    assert_eq!(acc["answers_rejected_by_reason"]["unparsable_score"], 1);
    // The chat interaction still counts; the labelled 10 and 0 are a promoter and a detractor.
    assert_eq!(v["overview"]["interactions"], 3);
    assert_eq!(v["nps"]["score"], 0.0);
    assert_eq!(v["nps"]["responses"], 2);
    assert!(
        stderr(&out).contains("interactions: 3 rows read, 3 used, 0 rejected; 1 answers rejected, their rows used (unparsable_score: 1)"),
        "{}",
        stderr(&out)
    );
    let rejects = std::fs::read_to_string(dir.path().join("rejects.csv")).unwrap();
    assert!(
        rejects.contains("interactions,i.csv,3,2,nps,n/a,unparsable_score"),
        "{rejects}"
    );
    let out = run(dir.path(), &["report", "-i", "i.csv", "--strict", "-q"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).starts_with(
            "custmetrics: error: i.csv:3: column \"nps\": score is not a number: \"n/a\""
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn inspect_shows_alternatives_and_score_candidates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("q.csv"),
        "email,date,Q1,Q2\na@x.com,2024-03-01,9,yes\nb@x.com,2024-03-02,3,no\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("tickets.csv"), TICKETS).unwrap();
    let out = run(dir.path(), &["inspect", "q.csv", "--as", "interactions"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("    no NPS score column; possible: \"Q1\" (set --nps-col)\n"),
        "{}",
        stdout(&out)
    );
    let out = run(
        dir.path(),
        &["inspect", "tickets.csv", "--as", "interactions"],
    );
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("customer id (also possible: \"Requester email\", \"Requester\")"),
        "{}",
        stdout(&out)
    );
    let v = json(&run(
        dir.path(),
        &[
            "inspect",
            "tickets.csv",
            "--as",
            "interactions",
            "--format",
            "json",
        ],
    ));
    assert_eq!(
        v["files"][0]["file"]["columns"]["alternatives"]["customer_id"],
        serde_json::json!(["Requester email", "Requester"])
    );
}
