//! The Ansible executor against the real `ansible-playbook` (ansible-core from PyPI, installed
//! into `.venv` by `scripts/setup.sh --e2e`), local connection, on SQLite and PostgreSQL.

use crate::support;

use serde_json::{Value, json};
use support::{Backend, TestServer};

on_both_backends!(playbooks_run_with_real_values_and_only_from_their_directory);

const SECRET_IP: &str = "10.44.55.66";

const TOUCH: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: record the host
      ansible.builtin.file:
        path: "{{ path }}"
        state: touch
    - name: say so
      ansible.builtin.debug:
        msg: "recorded {{ path }}"
"#;

const BROKEN: &str =
    "- hosts: all\n  tasks:\n    - ansible.builtin.nonexistent_module_xyz: {}\n  bogus_key: [\n";

fn letters() -> String {
    (0..12)
        .map(|_| (b'a' + rand::random::<u8>() % 26) as char)
        .collect()
}

const FIELDS: &str = "id status effectiveRisk action { target params }
    dryRun { passed checks { name passed detail } } execution { executor status output }";

async fn playbooks_run_with_real_values_and_only_from_their_directory(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("awoooi-ansible-{}", letters()));
    let playbooks = dir.join("playbooks");
    std::fs::create_dir_all(&playbooks).unwrap();
    std::fs::write(playbooks.join("touch.yml"), TOUCH).unwrap();
    std::fs::write(playbooks.join("broken.yml"), BROKEN).unwrap();
    std::fs::write(dir.join("outside.yml"), TOUCH).unwrap();
    let toml = format!(
        "[actions.ansible]\nplaybook_dir = \"{}\"\nbinary = \"{}\"\ntimeout_seconds = 120\n\
         risk = \"MEDIUM\"\n",
        playbooks.display(),
        support::venv("ansible-playbook").display()
    );
    let server = TestServer::start_configured(backend, &[], &toml).await;
    let sam = server.signed_in("sam", "sre").await;
    let alice = server.signed_in("alice", "devops").await;
    let incident = server
        .incident_from_alert(
            &sam,
            json!({"name": "DiskFull", "service": "batch", "severity": "warning",
                "description": format!("host {SECRET_IP} is out of disk")}),
        )
        .await;
    let propose = |action: Value| {
        let server = &server;
        let sam = sam.clone();
        let incident = incident.clone();
        async move {
            let answer = server
                .graphql(
                    Some(&sam),
                    &format!("mutation($i: ID!, $a: ActionInput!) {{ proposeAction(incidentId: $i, action: $a) {{ {FIELDS} }} }}"),
                    json!({"i": incident, "a": action}),
                )
                .await;
            assert_eq!(answer["errors"], Value::Null, "{answer}");
            answer["data"]["proposeAction"].clone()
        }
    };

    let path = format!("{}/seen-[IP_1]", dir.display());
    let touch =
        propose(json!({"kind": "ansible:touch", "target": "[IP_1]", "params": {"path": path}}))
            .await;
    assert_eq!(touch["dryRun"]["passed"], true, "{touch}");
    let syntax = touch["dryRun"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "SYNTAX")
        .unwrap()
        .clone();
    assert!(
        syntax["detail"]
            .as_str()
            .unwrap()
            .starts_with("ansible-playbook --syntax-check passes"),
        "{syntax}"
    );
    let id = touch["id"].as_str().unwrap().to_owned();
    let signed = server
        .graphql(
            Some(&alice),
            "mutation($id: ID!) { approve(approvalId: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(signed["errors"], Value::Null, "{signed}");
    let done = server.settled_approval(&sam, &id, FIELDS).await;
    assert_eq!(done["status"], "EXECUTED", "{done}");
    assert_eq!(done["execution"]["executor"], "ansible");
    let output = done["execution"]["output"].as_str().unwrap();
    assert!(
        output.contains("recorded ") && output.contains("seen-[IP_1]"),
        "{output}"
    );
    assert!(output.contains("ok=2"), "{output}");
    assert!(
        dir.join(format!("seen-{SECRET_IP}")).exists(),
        "the playbook got the real value"
    );

    // Ansible's own syntax check fails the dry-run of a broken playbook.
    let broken = propose(json!({"kind": "ansible:broken", "target": "batch"})).await;
    assert_eq!(broken["dryRun"]["passed"], false, "{broken}");
    // Nothing outside the directory, however it is spelled.
    let outside = propose(json!({"kind": "ansible:../outside", "target": "batch"})).await;
    assert_eq!(outside["dryRun"]["passed"], false);
    assert_eq!(
        outside["dryRun"]["checks"][0]["detail"],
        "`../outside`: playbook names are letters, digits, - and _"
    );

    let stored = server.dump_text_columns().await;
    assert!(
        !stored.contains(SECRET_IP),
        "a raw value reached the database"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
