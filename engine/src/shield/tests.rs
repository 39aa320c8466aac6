use super::*;

fn redact(text: &str) -> String {
    Shield::builtin().redact(text, &mut Pseudonyms::new())
}

/// Each input, redacted on its own, gives its expected output.
fn assert_redacts(cases: &[(&str, &str)]) {
    for (input, expected) in cases {
        assert_eq!(redact(input), *expected, "{input}");
    }
}

/// One line per detector kind: input → expected output.
#[test]
fn every_detector_kind_is_found_and_labelled() {
    let cases = [
        (
            "User 192.168.1.100 with email admin@company.com triggered alert",
            "User [IP_1] with email [EMAIL_1] triggered alert",
        ),
        ("peer 2001:db8::8a2e:370:7334 closed", "peer [IP_1] closed"),
        (
            "listen [::1]:8080 and fe80::1%eth0",
            "listen [[IP_1]]:8080 and [IP_2]%eth0",
        ),
        ("mapped ::ffff:10.0.0.1 ok", "mapped [IP_1] ok"),
        (
            "request 3f2b8c1e-9d4a-4e6f-8b2a-1c5d7e9f0a3b failed",
            "request [UUID_1] failed",
        ),
        (
            "auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU done",
            "auth [JWT_1] done",
        ),
        (
            "nic 00:1A:2b:3C:4d:5E up, 00-1a-2b-3c-4d-5f down",
            "nic [MAC_1] up, [MAC_2] down",
        ),
        (
            "card 4111 1111 1111 1111 charged",
            "card [CREDIT_CARD_1] charged",
        ),
        (
            "card 5555-5555-5555-4444 declined",
            "card [CREDIT_CARD_1] declined",
        ),
        ("key AKIAIOSFODNN7EXAMPLE used", "key [AWS_KEY_1] used"),
        (
            "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key=[SECRET_1]",
        ),
        (
            "push with ghp_16C7e42F292c6912E7710c838347Ae178B4a now",
            "push with [TOKEN_1] now",
        ),
        (
            "slack xoxb-123456789012-abcdefghij posted",
            "slack [TOKEN_1] posted",
        ),
        (
            "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc",
            "stripe [TOKEN_1]",
        ),
        ("llm sk-ant-api03-abcdefghijklmnopqrstuvwx", "llm [TOKEN_1]"),
        (
            "Authorization: Bearer abcdef0123456789abcdef",
            "Authorization: Bearer [TOKEN_1]",
        ),
        (
            "login password=hunter22 ok",
            "login password=[PASSWORD_1] ok",
        ),
        ("cfg api_key: \"abc123def\"", "cfg api_key: \"[SECRET_1]\""),
        ("GET /cb?token=deadbeef&x=1", "GET /cb?token=[TOKEN_1]&x=1"),
        (
            "dsn postgres://app:s3cr3t@db.internal:5432/app",
            "dsn postgres://app:[PASSWORD_1]@db.internal:5432/app",
        ),
    ];
    for (input, expect) in cases {
        assert_eq!(redact(input), expect, "input: {input}");
    }
}

#[test]
fn lookalikes_are_left_alone() {
    for text in [
        "at 12:30:45 the job ran",
        "version 1.2.3 released",
        "order 1234567890123 shipped",
        "card 4111 1111 1111 1112 is not a card",
        "999.1.1.1 is not an address",
        "ratio 3:1 at 10:15",
        "plain text with no secrets",
        "",
        "password=",
    ] {
        assert_eq!(redact(text), text);
    }
}

#[test]
fn the_same_value_keeps_its_label_across_texts_of_one_incident() {
    let shield = Shield::builtin();
    let mut names = Pseudonyms::new();
    let first = shield.redact("db 10.0.0.5 slow, client 10.0.0.9", &mut names);
    let second = shield.redact("10.0.0.9 retried against 10.0.0.5", &mut names);
    assert_eq!(first, "db [IP_1] slow, client [IP_2]");
    assert_eq!(second, "[IP_2] retried against [IP_1]");
    assert_eq!(names.len(), 2);
    assert_eq!(format!("{names:?}"), "Pseudonyms { entries: 2, .. }");
    // Another incident numbers from 1 again.
    let mut other = Pseudonyms::new();
    assert_eq!(shield.redact("10.0.0.9", &mut other), "[IP_1]");
}

#[test]
fn rehydration_restores_the_exact_original() {
    let shield = Shield::builtin();
    let mut names = Pseudonyms::new();
    let original =
        "User 192.168.1.100 <admin@company.com> [x] token=abc[1] Bearer abcdef0123456789abcdef";
    let redacted = shield.redact(original, &mut names);
    assert!(!redacted.contains("192.168.1.100") && !redacted.contains("admin@company.com"));
    assert_eq!(names.rehydrate(&redacted), original);
    assert_eq!(
        names.rehydrate("[IP_9] and [unknown]"),
        "[IP_9] and [unknown]"
    );
}

#[test]
fn overlaps_resolve_to_the_more_specific_detector() {
    // The assignment covers the JWT; the URL password covers the email-like userinfo.
    assert_eq!(
        redact("token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU"),
        "token=[TOKEN_1]"
    );
    assert_eq!(
        redact("redis://default:p4ss@10.1.2.3:6379"),
        "redis://default:[PASSWORD_1]@[IP_1]:6379"
    );
    // A rejected card candidate does not hide what follows it.
    assert_eq!(
        redact("4111 1111 1111 1112 then 4111 1111 1111 1111"),
        "4111 1111 1111 1112 then [CREDIT_CARD_1]"
    );
}

#[test]
fn custom_detectors_extend_the_builtins() {
    let shield = Shield::new(&[CustomDetector {
        name: "pod".into(),
        pattern: r"\b[a-z0-9-]+-[a-f0-9]{8,10}-[a-z0-9]{5}\b".into(),
        label: "POD".into(),
    }])
    .unwrap();
    let mut names = Pseudonyms::new();
    assert_eq!(
        shield.redact(
            "pod checkout-7d4b9c8f6d-x2k9q on 10.0.0.1 restarted",
            &mut names
        ),
        "pod [POD_1] on [IP_1] restarted"
    );
    let bad = Shield::new(&[CustomDetector {
        name: "broken".into(),
        pattern: "(".into(),
        label: "X".into(),
    }])
    .unwrap_err();
    assert!(
        bad.to_string()
            .starts_with("detector `broken`: invalid pattern"),
        "{bad}"
    );
    let empty = Shield::new(&[CustomDetector {
        name: "empty".into(),
        pattern: "a*".into(),
        label: "X".into(),
    }])
    .unwrap_err();
    assert_eq!(
        empty,
        ShieldError::MatchesEmpty {
            name: "empty".into()
        }
    );
    let label = Shield::new(&[CustomDetector {
        name: "l".into(),
        pattern: "x".into(),
        label: "pod".into(),
    }])
    .unwrap_err();
    assert!(label.to_string().contains("label `pod`"), "{label}");
}

#[test]
fn non_ascii_text_is_handled_without_panics() {
    let text = "Benutzer ünïcödé 10.0.0.1 — 日本語 admin@company.com ✓";
    assert_eq!(redact(text), "Benutzer ünïcödé [IP_1] — 日本語 [EMAIL_1] ✓");
    for cut in 0..text.len() {
        if let Some(part) = text.get(..cut) {
            let _ = redact(part);
        }
    }
}

#[test]
fn relabel_moves_text_to_another_incident_s_labels_consistently() {
    let shield = Shield::builtin();
    let mut old = Pseudonyms::new();
    let mut survivor = Pseudonyms::new();
    // The survivor already knows one of the values, under another number.
    assert_eq!(
        shield.redact("db at 10.0.0.9", &mut survivor),
        "db at [IP_1]"
    );
    let text = shield.redact(
        "10.0.0.1 and 10.0.0.9 paged ops@x.io [not a label]",
        &mut old,
    );
    assert_eq!(text, "[IP_1] and [IP_2] paged [EMAIL_1] [not a label]");
    let moved = old.relabel(&text, &mut survivor);
    assert_eq!(moved, "[IP_2] and [IP_1] paged [EMAIL_1] [not a label]");
    // The same values, whichever map says them.
    assert_eq!(survivor.rehydrate(&moved), old.rehydrate(&text));
    assert_eq!(
        old.relabel("[IP_7] unknown", &mut survivor),
        "[IP_7] unknown"
    );
}

/// Look-alikes that stay as they are, and the notations real systems print, one line each:
/// input → expected output.
#[test]
fn paths_versions_and_oids_stay_while_other_notations_are_found() {
    let cases = [
        // Code paths keep their `::`.
        (
            "panicked at Result::unwrap() in tower_http::trace::on_response",
            "panicked at Result::unwrap() in tower_http::trace::on_response",
        ),
        (
            "sqlx::query failed; std::io::Error",
            "sqlx::query failed; std::io::Error",
        ),
        ("crate::ab::cd and Vec::new", "crate::ab::cd and Vec::new"),
        // Versions and OIDs stay.
        (
            "agent 7.7.37.114-alpha.2 started",
            "agent 7.7.37.114-alpha.2 started",
        ),
        (
            "Version=8.0.0.0, Culture=neutral",
            "Version=8.0.0.0, Culture=neutral",
        ),
        (
            "trap oid 1.3.6.1.4.1.2227.1.1 from 10.0.0.7",
            "trap oid 1.3.6.1.4.1.2227.1.1 from [IP_1]",
        ),
        // Addresses next to them are still found.
        (
            "dial 2001:db8::1: connection refused; host:fe80::2 down",
            "dial [IP_1]: connection refused; host:[IP_2] down",
        ),
        ("range 10.0.0.1-10.0.0.5", "range [IP_1]-[IP_2]"),
        // Cisco's MAC notation; American Express grouping (Luhn decides).
        ("port aabb.ccdd.eeff learned", "port [MAC_1] learned"),
        (
            "amex 3782 822463 10005 ok, 3782 822463 10006 not a card",
            "amex [CREDIT_CARD_1] ok, 3782 822463 10006 not a card",
        ),
        // Secrets as JSON and YAML values, under common spellings.
        (
            r#"{"secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#,
            r#"{"secret_access_key": "[SECRET_1]"}"#,
        ),
        (
            "aws_secret_access_key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key: [SECRET_1]",
        ),
        (
            r#"{"password": "hunter2", "api_key": "k-123"}"#,
            r#"{"password": "[PASSWORD_1]", "api_key": "[SECRET_1]"}"#,
        ),
    ];
    assert_redacts(&cases);
}

/// One value, one label: found by two detectors in different surroundings, it keeps the label
/// it got first.
#[test]
fn a_value_keeps_its_label_whatever_finds_it_later() {
    assert_eq!(
        redact("token=Zq8xR2pL9vK4 then password: Zq8xR2pL9vK4 and secret=Zq8xR2pL9vK4"),
        "token=[TOKEN_1] then password: [TOKEN_1] and secret=[TOKEN_1]"
    );
}

/// Secrets in env dumps and headers, under prefixed, camel, kebab and upper-case names.
#[test]
fn prefixed_and_cased_secret_names_are_found() {
    let cases = [
        ("DB_PASSWORD=s3cr3t-pw", "DB_PASSWORD=[PASSWORD_1]"),
        ("GITHUB_TOKEN=abc123xyz789", "GITHUB_TOKEN=[TOKEN_1]"),
        (
            "STRIPE_SECRET_KEY: 9f8e7d6c5b4a",
            "STRIPE_SECRET_KEY: [SECRET_1]",
        ),
        (
            r#"{"clientSecret": "Zx81-qq", "accessToken": "tok-9a8b"}"#,
            r#"{"clientSecret": "[SECRET_1]", "accessToken": "[TOKEN_1]"}"#,
        ),
        ("x-api-key: a1b2c3d4e5", "x-api-key: [SECRET_1]"),
        // Words that only end like a secret's name stay.
        ("bypass=1 compass: north", "bypass=1 compass: north"),
    ];
    assert_redacts(&cases);
}

#[test]
fn redact_stream_keeps_lines_and_labels_consistent() {
    let input = "a 10.0.0.1\r\nb bob@x.io 10.0.0.1\n\nno newline 10.0.0.2";
    let mut out = Vec::new();
    let names = Shield::builtin()
        .redact_stream(input.as_bytes(), &mut out)
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "a [IP_1]\r\nb [EMAIL_1] [IP_1]\n\nno newline [IP_2]"
    );
    assert_eq!(names.len(), 3);
}

/// Header, cookie, env and config notations of credentials, one line each: input → expected.
#[test]
fn credentials_in_headers_cookies_and_config_are_found() {
    let cases = [
        // HTTP Basic: the base64 of `user:password` (decoded to check it is one).
        (
            "> Authorization: Basic YWxpY2U6czNjcjN0IQ==",
            "> Authorization: Basic [PASSWORD_1]",
        ),
        (
            "basic authentication enabled",
            "basic authentication enabled",
        ),
        // Session cookies by their names.
        (
            "Cookie: sessionid=8f2k1m; theme=dark; csrftoken=Qx7Lm2",
            "Cookie: sessionid=[TOKEN_1]; theme=dark; csrftoken=[TOKEN_2]",
        ),
        (
            "Set-Cookie: JSESSIONID=A1B2C3D4E5; Path=/; HttpOnly",
            "Set-Cookie: JSESSIONID=[TOKEN_1]; Path=/; HttpOnly",
        ),
        // Glued, dotted and flag spellings; a quoted value is taken whole.
        ("PGPASSWORD=pa55w0rd psql", "PGPASSWORD=[PASSWORD_1] psql"),
        (
            "spring.datasource.password=Db!pass9",
            "spring.datasource.password=[PASSWORD_1]",
        ),
        (
            "--db-password=hunter2 --verbose",
            "--db-password=[PASSWORD_1] --verbose",
        ),
        (
            r#"{"passphrase": "correct horse battery staple"}"#,
            r#"{"passphrase": "[PASSWORD_1]"}"#,
        ),
        (
            r#"webhookSecret: 'whsec_9fK2'"#,
            r#"webhookSecret: '[SECRET_1]'"#,
        ),
        // The shell's working directory, and keys that only end like a secret's name.
        (
            "PWD=/home/deploy OLDPWD=/tmp",
            "PWD=/home/deploy OLDPWD=/tmp",
        ),
        (
            "partitionKey=orders-7 monkey=george AWS_ACCESS_KEY_ID=none",
            "partitionKey=orders-7 monkey=george AWS_ACCESS_KEY_ID=none",
        ),
        // Shapes are checked after the scan: a UUID's group lengths, an access key's length,
        // an address's octets.
        (
            "id 3f2b8c1e-9d4a-4e6f-8b2a-1c5d7e9f0a3b9 ok",
            "id 3f2b8c1e-9d4a-4e6f-8b2a-1c5d7e9f0a3b9 ok",
        ),
        ("key AKIAIOSFODNN7EXAMPLEX", "key AKIAIOSFODNN7EXAMPLEX"),
        ("from 300.1.2.3 to 10.1.2.3", "from 300.1.2.3 to [IP_1]"),
    ];
    assert_redacts(&cases);
}

/// Notations found on real logs, one line each: input → expected output.
#[test]
fn notations_from_real_logs_are_found() {
    let cases = [
        // Connection strings: Go's MySQL DSN, an empty URL user, a password holding `@`.
        (
            r#"dsn="app:p@ss/w0rd@tcp(10.1.2.3:3306)/orders""#,
            r#"dsn="app:[PASSWORD_1]@tcp([IP_1]:3306)/orders""#,
        ),
        (
            "redis://:Zx9!q@cache:6379/0",
            "redis://:[PASSWORD_1]@cache:6379/0",
        ),
        // Command lines and SQL.
        (
            "+ curl -u admin:O^oXU%Go! https://x",
            "+ curl -u admin:[PASSWORD_1] https://x",
        ),
        (
            "+ docker login -u ci -p Winter2022 docker.io",
            "+ docker login -u ci -p [PASSWORD_1] docker.io",
        ),
        (
            "statement: ALTER ROLE app WITH PASSWORD 'letmein123'",
            "statement: ALTER ROLE app WITH PASSWORD '[PASSWORD_1]'",
        ),
        // Query strings: the value ends at `&`, `key` and an OAuth `code` are secrets there.
        (
            "GET /cb?code=fxz7jHTj&state=abc&key=9f8e7d6c HTTP/1.1",
            "GET /cb?code=[TOKEN_1]&state=abc&key=[SECRET_1] HTTP/1.1",
        ),
        (
            "GET /reset?token=R9sq&email=dba%40example.net HTTP/2.0",
            "GET /reset?token=[TOKEN_1]&email=[EMAIL_1] HTTP/2.0",
        ),
        // A stray `@` before an encoded address does not hide it.
        ("@A%40example.com", "@[EMAIL_1]"),
        ("_@A%40example.com", "_@[EMAIL_1]"),
        // tcpdump -A prints CR LF as `..`; an env list closes with `]`.
        (
            "X-Api-Key: dccad180c62c..Accept: */*",
            "X-Api-Key: [SECRET_1]..Accept: */*",
        ),
        (
            "env=[A=1 OPENAI_API_KEY=k-9xYz]",
            "env=[A=1 OPENAI_API_KEY=[SECRET_1]]",
        ),
        // Placeholders are not values; public key tokens are not secrets.
        (
            r#"password: None, "has_password":true, ssl.keystore.password = [hidden]"#,
            r#"password: None, "has_password":true, ssl.keystore.password = [hidden]"#,
        ),
        (
            "Version=13.0.0.0, Culture=neutral, PublicKeyToken=30ad4fe6b2a6aeed",
            "Version=13.0.0.0, Culture=neutral, PublicKeyToken=30ad4fe6b2a6aeed",
        ),
        (
            r#"password: Some("Nc9La%5Eo"), host"#,
            r#"password: Some("[PASSWORD_1]"), host"#,
        ),
        // Registry auth (base64 of user:password); a Kubernetes Secret's name stays.
        (
            r#"{"auths":{"ghcr.io":{"auth":"Y2ktYm90OlN1bnNoaW5lNw=="}}}"#,
            r#"{"auths":{"ghcr.io":{"auth":"[PASSWORD_1]"}}}"#,
        ),
        (
            r#"MountVolume.SetUp failed: secret "db-creds" not found"#,
            r#"MountVolume.SetUp failed: secret "db-creds" not found"#,
        ),
        // Shapes without keys: base64 PEM private keys, AWS secret keys, webhooks, vendors.
        (
            "tls.key: LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUV2",
            "tls.key: [SECRET_1]",
        ),
        (
            "tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUV2",
            "tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUV2",
        ),
        (
            "AWS Secret Access Key [None]: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "AWS Secret Access Key [None]: [SECRET_1]",
        ),
        (
            "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 ok",
            "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 ok",
        ),
        (
            "POST /services/T0ZYCGUDR/BRLS5V1UG/9G21s9pBozRZa0I4lCklYN0D",
            "POST /services/T0ZYCGUDR/BRLS5V1UG/[SECRET_1]",
        ),
        (
            "login -p glpat-8EMtCLatN_pjzrLHk2iI and ya29.a0AfB_byC1x2y3z4w5v6u7t8",
            "login -p [PASSWORD_1] and [TOKEN_1]",
        ),
        // Addresses: Net-SNMP's unpadded MAC, the MAC ending a DHCPv6 DUID, Java's
        // `host/address:port`; a user agent's version is not an address.
        (
            "ifPhysAddress.2 = 0:25:90:46:a2:7",
            "ifPhysAddress.2 = [MAC_1]",
        ),
        (
            "DUID: 00-01-00-01-70-88-84-1B-A0-36-9F-9E-4F-06",
            "DUID: 00-01-00-01-70-88-84-1B-[MAC_1]",
        ),
        (
            "connect to api.example.com/2001:db8:0:0:0:0:0:eeeb:443 failed",
            "connect to api.example.com/[IP_1]:443 failed",
        ),
        (
            "Chrome/120.0.0.0 Safari/537.36 from 10.0.0.1",
            "Chrome/120.0.0.0 Safari/537.36 from [IP_1]",
        ),
        ("touched /tmp/10.0.0.7", "touched /tmp/[IP_1]"),
        // JSON inside a JSON string; a header array; a flag and its value after a blank, but
        // not prose about the flag.
        (
            r#"{"body":"{\"adminPassword\":\"Ornl^#9sV\"}"}"#,
            r#"{"body":"{\"adminPassword\":\"[PASSWORD_1]\"}"}"#,
        ),
        (
            r#""X-Api-Key":["9O8popuB+RKrXk1r"]"#,
            r#""X-Api-Key":["[SECRET_1]"]"#,
        ),
        (
            "helm repo add x --username ci --password oKD5~rINV1q",
            "helm repo add x --username ci --password [PASSWORD_1]",
        ),
        (
            "WARNING! Using --password via the CLI is insecure.",
            "WARNING! Using --password via the CLI is insecure.",
        ),
        // Network devices, SQL, Redis, MySQL's generated password.
        (
            "snmp-server community JJHTMYLqfRk RO; username b secret 0 c!wJ!XjK",
            "snmp-server community [PASSWORD_1] RO; username b secret 0 [PASSWORD_2]",
        ),
        (
            "CREATE USER 'u'@'%' IDENTIFIED BY 'Pa55word^'",
            "CREATE USER 'u'@'%' IDENTIFIED BY '[PASSWORD_1]'",
        ),
        ("requirepass \"_bQSN#B3Jy\"", "requirepass \"[PASSWORD_1]\""),
        (
            "temporary password is generated for root@localhost: LbX8MR8bf",
            "temporary password is generated for root@localhost: [PASSWORD_1]",
        ),
        // A BIND/dhcpd key's secret; Elasticsearch's ApiKey credentials.
        (
            r#"key "ddns" { algorithm hmac-md5; secret "bCU+tBGK/1m6A8Zk=="; };"#,
            r#"key "ddns" { algorithm hmac-md5; secret "[SECRET_1]"; };"#,
        ),
        (
            "Authorization: ApiKey VnBTOW1OSm5uWXJIVVB2V01aZG86VXFk",
            "Authorization: ApiKey [TOKEN_1]",
        ),
        // Placeholders, digests and numbers are not secrets.
        (
            r#"(using password: YES) "password":"HIDDEN_DUE_TO_SECURITY_REASONS" sessionid:0x100007d2"#,
            r#"(using password: YES) "password":"HIDDEN_DUE_TO_SECURITY_REASONS" sessionid:0x100007d2"#,
        ),
        (
            r#""client_token":"hmac-sha256:6a9c36140b85c2bd""#,
            r#""client_token":"hmac-sha256:6a9c36140b85c2bd""#,
        ),
        // Diners Club's 4-6-4 grouping (Luhn decides).
        ("card 3622 720627 1667", "card [CREDIT_CARD_1]"),
        // A value that starts with a non-ASCII character.
        ("password=ünïcode-pw ok", "password=[PASSWORD_1] ok"),
        // Discover's 644-649 range (Luhn decides).
        ("card 6449 0242 2595 9473 ok", "card [CREDIT_CARD_1] ok"),
    ];
    assert_redacts(&cases);
}

/// Values a review found leaking, one line each: input → expected output.
#[test]
fn values_that_only_look_like_placeholders_or_end_early_are_found_whole() {
    let cases = [
        // Long hex is a key, not a number; a bracket alone does not make a placeholder.
        (
            "PRIVATE_KEY=0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318",
            "PRIVATE_KEY=[SECRET_1]",
        ),
        ("DB_PASSWORD=(Xk9#mQ2z", "DB_PASSWORD=[PASSWORD_1]"),
        // Quoted phrases are taken whole after a flag or `IDENTIFIED BY`.
        (
            r#"--password "correct horse" --user"#,
            r#"--password "[PASSWORD_1]" --user"#,
        ),
        (
            "IDENTIFIED BY 'correct horse battery'",
            "IDENTIFIED BY '[PASSWORD_1]'",
        ),
        // A scheme inside a value keeps its credential with it.
        (
            "token=Bearer abc123def456ghi789 next",
            "token=[TOKEN_1] next",
        ),
        // A full stop after a bare AWS secret key; a flag at the start of a later line.
        (
            "Secret access key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY.",
            "Secret access key: [SECRET_1].",
        ),
        ("x\n--password hunter2", "x\n--password [PASSWORD_1]"),
        // Base64 of a PEM file whose private key follows its EC parameters.
        (
            "tls.key: LS0tLS1CRUdJTiBFQyBQQVJBTUVURVJTLS0tLS0KQmdncWhrak9QUU1CQnc9PQotLS0tLUVORCBFQyBQQVJBTUVURVJTLS0tLS0KLS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUE=",
            "tls.key: [SECRET_1]",
        ),
    ];
    assert_redacts(&cases);
}

/// Long runs of rejected candidates come back unchanged (this does not time them).
#[test]
fn long_runs_of_rejected_candidates_are_left_as_they_are() {
    for input in [
        "key=".repeat(2_000),
        ":".repeat(10_000),
        "abc:".repeat(2_000),
        // Runs in which every position is a candidate whose pattern could read on to the end.
        "eyJ".repeat(20_000),
        "LS0tLS1CRUdJTi".repeat(5_000),
        "::.".repeat(20_000),
        "a%40".repeat(20_000),
        "set password ".repeat(5_000),
        "a@tcp(".repeat(10_000),
        "x://:".repeat(10_000),
        format!("password=a{}", ")".repeat(5_000)),
    ] {
        let out = redact(&input);
        if input.starts_with("password") {
            assert_eq!(out, format!("password=[PASSWORD_1]{}", ")".repeat(5_000)));
        } else {
            assert_eq!(out, input);
        }
    }
}

/// The findings of one leftmost-first automaton of every built-in pattern, run from each
/// position in turn, with a rejected candidate handing its position to the next detector and
/// then to the next position: how the Shield searched before its detectors said where their
/// matches start (less a shortcut it took past long rejected candidates, which made it miss
/// a value inside one). The candidate passes must find exactly this.
fn single_automaton_find(shield: &Shield, text: &str) -> Vec<(usize, usize, String)> {
    use regex_automata::{Anchored, Input, meta};
    static AUTOMATA: std::sync::OnceLock<(meta::Regex, Vec<meta::Regex>)> =
        std::sync::OnceLock::new();
    let build = |patterns: &[&str]| build(patterns).expect("built-in patterns compile");
    let (all, each) = AUTOMATA.get_or_init(|| {
        let patterns: Vec<&str> = BUILTINS.iter().map(|b| b.pattern).collect();
        let each = patterns.iter().map(|p| build(&[p])).collect();
        (build(&patterns), each)
    });
    // Bare AWS secret keys: every maximal run of bytes that join a word, judged whole.
    let joins = |b: u8| b.is_ascii_alphanumeric() || b"/+=._-".contains(&b);
    let bytes = text.as_bytes();
    let mut secrets = Vec::new();
    let mut start = 0;
    for end in 0..=bytes.len() {
        if end == bytes.len() || !joins(bytes[end]) {
            if let Some(len) = detectors::aws_secret_word(&bytes[start..end]) {
                secrets.push((start, start + len));
            }
            start = end + 1;
        }
    }
    // The findings at `position` in priority order, from the detector the automaton chose.
    let at_position = |position: usize, first: usize| {
        (first..BUILTINS.len()).filter_map(move |index| {
            let input = Input::new(text).range(position..).anchored(Anchored::Yes);
            let m = each[index].search(&input)?;
            Some((index, shield.confirm(index, text, m.start(), m.end())?))
        })
    };
    let mut found = Vec::new();
    let mut secrets = secrets.into_iter().peekable();
    let mut emitted = 0;
    let mut emit = |finding: Finding<'_>| {
        while let Some(&(s, e)) = secrets.peek() {
            if s >= finding.end {
                break;
            }
            if e <= finding.start && s >= emitted {
                found.push((s, e, "SECRET".to_owned()));
            }
            secrets.next();
        }
        emitted = finding.end;
        found.push((finding.start, finding.end, finding.kind.to_owned()));
    };
    let mut at = 0;
    while at < text.len() {
        let Some(m) = all.search(&Input::new(text).range(at..)) else {
            break;
        };
        let Some((index, finding)) = at_position(m.start(), m.pattern().as_usize()).next() else {
            at = m.start() + 1;
            continue;
        };
        // What a credential's match held before its value, up to the value.
        let mut inner = if shield.detectors[index].value.has_user() {
            m.start() + 1
        } else {
            finding.start
        };
        while inner < finding.start {
            let Some(n) = all
                .search(&Input::new(text).range(inner..))
                .filter(|n| n.start() < finding.start)
            else {
                break;
            };
            let held = at_position(n.start(), n.pattern().as_usize())
                .map(|(_, held)| held)
                .find(|held| held.end <= finding.start);
            inner = match held {
                Some(held) => {
                    let next = held.end.max(n.start() + 1);
                    emit(held);
                    next
                }
                None => n.start() + 1,
            };
        }
        at = finding.end.max(m.start() + 1);
        emit(finding);
    }
    found.extend(
        secrets
            .filter(|&(s, _)| s >= emitted)
            .map(|(s, e)| (s, e, "SECRET".to_owned())),
    );
    found
}

fn candidate_find(shield: &Shield, text: &str) -> Vec<(usize, usize, String)> {
    shield
        .find(text)
        .into_iter()
        .map(|f| (f.start, f.end, f.kind.to_owned()))
        .collect()
}

/// On every line of the three labelled corpora, the candidate passes find exactly what one
/// automaton of all the patterns finds.
#[test]
fn candidates_find_what_one_automaton_of_all_patterns_finds_on_the_corpora() {
    let shield = Shield::builtin();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../evals/shield");
    let mut lines = 0;
    for corpus in [
        "corpus.jsonl",
        "holdout/holdout.jsonl",
        "holdout2/holdout2.jsonl",
    ] {
        let path = format!("{root}/{corpus}");
        let records = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        for record in records.lines() {
            let record: serde_json::Value = serde_json::from_str(record).expect("a JSON record");
            let text = record["text"].as_str().expect("a text");
            assert_eq!(
                candidate_find(&shield, text),
                single_automaton_find(&shield, text),
                "{corpus}: {text}"
            );
            lines += 1;
        }
    }
    assert!(lines > 10_000, "{lines} lines");
}

use proptest::strategy::Strategy as _;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
    /// On text made of the pieces values and their look-alikes are made of, the candidate
    /// passes find exactly what one automaton of all the patterns finds.
    #[test]
    fn candidates_find_what_one_automaton_finds_on_generated_text(
        pieces in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(vec![
                    " ", "\t", "\n", "=", ":", "::", ".", "-", "--", "@", "%40", "/", "//", "\"",
                    "'", "\\", ",", ";", "(", ")", "[", "]", "_", "+", "://", "0", "1", "12",
                    "255", "256", "4111", "1111", "378282246310005", "ab", "fe80", "ffff", "Cd",
                    "3f2b8c1e", "9d4a", "1c5d7e9f0a3b", "password", "PASSWORD", "db_pass",
                    "secret", "Token", "api-key", "key", "sessionid", "Bearer ", "Basic ",
                    "dXNlcjpwYXNz", "eyJhbGciOiJIUzI1NiJ9", "eyJzdWIiOiIxIn0", "sig",
                    "AKIAIOSFODNN7EXAMPLE", "ghp_", "xoxb-", "sk-", "sk_live_", "-u ", "-p ",
                    "login ", "IDENTIFIED BY ", "snmp-server community ", "user", "example.com",
                    "@tcp(", "postgres", "http", "v", "Version=", "1.3.6.1", "Chrome/",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "-----BEGIN RSA PRIVATE KEY-----",
                    "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQ==", "/services/T0123456/B0123456/",
                    "é", "ü",
                ]).prop_map(|piece: &str| piece.to_owned()),
                "[a-zA-Z0-9]{1,12}",
            ],
            0..24,
        )
    ) {
        let text: String = pieces.concat();
        let shield = Shield::builtin();
        proptest::prop_assert_eq!(
            candidate_find(&shield, &text),
            single_automaton_find(&shield, &text),
            "{:?}", text
        );
    }
}

/// A long unquoted value cut where a character is not is cut before it instead (no panic),
/// and its tail is scanned on.
#[test]
fn a_long_value_with_wide_characters_is_cut_on_a_character() {
    for width in 4090..4100 {
        let text = format!("password={}é and more", "a".repeat(width));
        let out = redact(&text);
        assert!(out.starts_with("password=[PASSWORD_1]"), "{width}: {out}");
        assert!(out.ends_with(" and more"), "{width}: {out}");
    }
}

/// Cards grouped after 8 or 12 digits are found as the pattern allows.
#[test]
fn cards_grouped_after_eight_or_twelve_digits_are_found() {
    assert_redacts(&[
        ("card 41111111 11111111 ok", "card [CREDIT_CARD_1] ok"),
        ("card 411111111111-1111 ok", "card [CREDIT_CARD_1] ok"),
    ]);
}

/// What a credential's match holds before its value (the user of `-u user:password` or of
/// `scheme://user:password@`) is found too.
#[test]
fn values_in_a_credentials_user_part_are_found() {
    assert_redacts(&[
        (
            "curl -u alice@example.com:s3cr3t https://api.example.com",
            "curl -u [EMAIL_1]:[PASSWORD_1] https://api.example.com",
        ),
        (
            "s3://AKIAIOSFODNN7EXAMPLE:hunter2hunter2@bucket/key",
            "s3://[AWS_KEY_1]:[PASSWORD_1]@bucket/key",
        ),
        (
            "docker login -u 3f2b8c1e-9d4a-4e6f-8b2a-1c5d7e9f0a3b -p t0psecret registry",
            "docker login -u [UUID_1] -p [PASSWORD_1] registry",
        ),
    ]);
}

/// A reader that hands out one byte at a time and is interrupted before every other one.
struct Trickle<'a> {
    bytes: &'a [u8],
    interrupt: bool,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let Some((&first, rest)) = self.bytes.split_first() else {
            return Ok(0);
        };
        buf[0] = first;
        self.bytes = rest;
        Ok(1)
    }
}

/// Reads of one byte, interruptions and invalid UTF-8 give what one read of the whole input
/// gives.
#[test]
fn redact_stream_gives_the_same_from_short_and_interrupted_reads() {
    let mut input =
        b"a 10.0.0.1 password=hunter2\nb \xff bob@x.io 10.0.0.1\n\nlast 10.0.0.2".to_vec();
    input.extend_from_slice("é 3f2b8c1e-9d4a-4e6f-8b2a-1c5d7e9f0a3b".as_bytes());
    let shield = Shield::builtin();
    let (mut whole, mut trickled) = (Vec::new(), Vec::new());
    shield.redact_stream(&input[..], &mut whole).unwrap();
    let trickle = Trickle {
        bytes: &input,
        interrupt: false,
    };
    shield.redact_stream(trickle, &mut trickled).unwrap();
    assert_eq!(
        String::from_utf8(trickled).unwrap(),
        String::from_utf8(whole).unwrap()
    );
}

/// `input` through `redact_stream`, and its lines through `redact` one by one with one label
/// map.
fn streamed_and_line_by_line(input: &str) -> (String, String) {
    let shield = Shield::builtin();
    let mut streamed = Vec::new();
    shield
        .redact_stream(input.as_bytes(), &mut streamed)
        .unwrap();
    let mut names = Pseudonyms::new();
    let expected: String = input
        .split_inclusive('\n')
        .map(|line| shield.redact(line, &mut names))
        .collect();
    (String::from_utf8(streamed).unwrap(), expected)
}

/// A line longer than the stream's block (1 MiB, read in halves) is redacted whole, as
/// `redact` does it, with the lines around it.
#[test]
fn redact_stream_redacts_a_line_longer_than_its_block() {
    let long = format!(
        "start 10.0.0.1 {} password=hunter22 end bob@x.io\n",
        "word ".repeat(700_000)
    );
    let input = format!("first 10.0.0.2\n{long}last 10.0.0.1\n");
    let (streamed, expected) = streamed_and_line_by_line(&input);
    assert!(
        streamed.starts_with("first [IP_1]\nstart [IP_2] word"),
        "{}",
        &streamed[..40]
    );
    assert!(streamed.ends_with("end [EMAIL_1]\nlast [IP_2]\n"));
    assert_eq!(streamed, expected);
}

/// A stream searches each block of lines for the literals found anywhere (`eyJ`, base64 PEM)
/// at once: every line is redacted as it is on its own, a literal cut by a line end included.
#[test]
fn redact_stream_finds_the_literals_of_each_line_as_its_line_alone_does() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX2hlcmU";
    let pem = "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFb3dJQkFBS0NBUUVB";
    let input = format!(
        "a {jwt}\nb x{jwt} {jwt}\ncut ey\nJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln\n\
         key: {pem}\nplain line\n{jwt} and {pem}\nLS0tLS1C\nRUdJTiBSU0E="
    );
    let (streamed, expected) = streamed_and_line_by_line(&input);
    assert_eq!(streamed, expected);
    assert_eq!(streamed.matches("[JWT_1]").count(), 4, "{streamed}");
    assert_eq!(streamed.matches("[SECRET_1]").count(), 2, "{streamed}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
    /// At every position of text made of the pieces of dotted numbers and UUIDs, a shape read
    /// directly (IPv4, UUID) matches where its pattern's anchored search does, and ends there.
    #[test]
    fn shapes_read_directly_end_where_their_patterns_do(
        pieces in proptest::collection::vec(
            proptest::sample::select(vec![
                "0", "1", "12", "255", "256", "1234", ".", "..", "-", "--", "a", "F", "g", "_",
                " ", ":", "é", "3f2b8c1e", "9d4a", "4E6F", "1c5d7e9f0a3b", "10.0.0.1",
                "3f2b8c1e-9d4a-4e6f-8b2a-1c5d7e9f0a3b",
            ]),
            0..16,
        )
    ) {
        use regex_automata::{Anchored, Input};
        let text: String = pieces.concat();
        static SHAPES: std::sync::OnceLock<Vec<(Shape, regex_automata::meta::Regex)>> =
            std::sync::OnceLock::new();
        let shapes_and_patterns = SHAPES.get_or_init(|| {
            BUILTINS
                .iter()
                .filter_map(|builtin| match builtin.start {
                    Start::Shape(shape) => Some((
                        shape,
                        build(&[builtin.pattern]).expect("built-in pattern compiles"),
                    )),
                    _ => None,
                })
                .collect()
        });
        let mut shapes = 0;
        for (shape, regex) in shapes_and_patterns {
            let shape = *shape;
            for at in 0..=text.len() {
                let Some(direct) = starts::direct_match(shape, text.as_bytes(), at) else {
                    break;
                };
                shapes += usize::from(at == 0);
                let input = Input::new(&text).range(at..).anchored(Anchored::Yes);
                proptest::prop_assert_eq!(
                    direct,
                    regex.search(&input).map(|m| m.end()),
                    "{:?} at {}", text, at
                );
            }
        }
        proptest::prop_assert_eq!(shapes, 2);
    }
}
