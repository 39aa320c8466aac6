//! A real `awoooi` server on a loopback port, over a fresh SQLite file or PostgreSQL database.
#![allow(dead_code)] // shared by several test binaries; each uses a subset

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::Parser;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

/// Generates one `#[tokio::test]` per backend for each scenario.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

/// The next `data` a subscription delivers (answering pings), or `None` after `wait` of
/// silence.
pub async fn next_data(ws: &mut Ws, wait: std::time::Duration) -> Option<Value> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(wait, ws.next()).await.ok()??.ok()?;
        let Message::Text(text) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).unwrap();
        match value["type"].as_str() {
            Some("next") => return Some(value["payload"]["data"].clone()),
            Some("ping") => {
                let _ = ws
                    .send(Message::text(json!({"type": "pong"}).to_string()))
                    .await;
            }
            Some("error" | "complete") => panic!("subscription ended: {value}"),
            _ => {}
        }
    }
}

/// A tool the tests drive, from the `.venv` that `scripts/setup.sh --e2e` installs.
pub fn venv(file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../.venv/bin")
        .join(file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh --e2e",
        path.display()
    );
    path
}

pub const PASSWORD: &str = "correct horse battery";
pub const WEBHOOK_SECRET: &str = "test-webhook-secret";

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

fn pg_admin_url() -> String {
    std::env::var("AWOOOI_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(admin_url: &str, name: &str) -> String {
    let base = admin_url
        .rsplit_once('/')
        .map(|(base, _)| base)
        .unwrap_or(admin_url);
    format!("{base}/{name}")
}

/// A fresh database and scratch directory of its own, for a test that runs `awoooi`
/// processes itself; dropped with it.
pub struct ScratchDb {
    pub url: String,
    pub dir: PathBuf,
    scratch: Scratch,
}

impl ScratchDb {
    pub async fn new(backend: Backend) -> ScratchDb {
        let id = format!("{}_{:016x}", std::process::id(), rand::random::<u64>());
        let dir = std::env::temp_dir().join(format!("awoooi-test-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut scratch = Scratch {
            dir: dir.clone(),
            pg_database: None,
        };
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("awoooi.db").display()),
            Backend::Postgres => {
                let name = format!("awoooi_test_{id}");
                let admin = Database::connect(pg_admin_url()).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL at {} is required for these tests: {e}",
                        pg_admin_url()
                    )
                });
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap();
                scratch.pg_database = Some(name.clone());
                with_database(&pg_admin_url(), &name)
            }
        };
        ScratchDb { url, dir, scratch }
    }
}

/// The per-test database; dropped (SQLite: deleted) when the test ends, even on panic.
struct Scratch {
    dir: PathBuf,
    pg_database: Option<String>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(name) = self.pg_database.take() {
            // Drop runs outside any runtime we may block, so use a private one on a thread.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(drop_pg_database(&name))
            })
            .join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn drop_pg_database(name: &str) {
    if let Ok(admin) = Database::connect(pg_admin_url()).await {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
}

pub struct CliOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A copy of the demo topology in a file, removed when dropped.
pub struct DemoTopology(PathBuf);

impl DemoTopology {
    pub fn new() -> DemoTopology {
        let path =
            std::env::temp_dir().join(format!("awoooi-topology-{}.yaml", rand::random::<u64>()));
        std::fs::write(&path, engine::topology::DEMO_YAML).unwrap();
        DemoTopology(path)
    }

    /// `--topology FILE`.
    pub fn args(&self) -> [&str; 2] {
        ["--topology", self.0.to_str().unwrap()]
    }
}

impl Drop for DemoTopology {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub struct TestServer {
    /// Its HTTP API (`server.graphql(…)`, `server.base`, … through `Deref`).
    pub api: Api,
    /// The running server's state (its ingest pipeline, database, …).
    pub state: server::edge::http::AppState,
    pub database_url: String,
    task: tokio::task::JoinHandle<()>,
    scratch: Scratch,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        TestServer::start_with(backend, &[]).await
    }

    /// A server with the demo topology (`--topology` pointing at a copy of it).
    pub async fn with_demo_topology(backend: Backend) -> TestServer {
        let topology = DemoTopology::new();
        TestServer::start_with(backend, &topology.args()).await
    }

    /// Signs approval `id` as `token`; the signature must be accepted.
    pub async fn approve(&self, token: &str, id: &str) {
        let signed = self
            .graphql(
                Some(token),
                "mutation($id: ID!) { approve(approvalId: $id) { status } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(signed["errors"], Value::Null, "{signed}");
    }

    /// Reads approval `id` (with `fields`, which must include `status`) until the background
    /// executor is done with it.
    pub async fn settled_approval(&self, token: &str, id: &str, fields: &str) -> Value {
        let query = format!("query($id: ID!) {{ approval(id: $id) {{ {fields} }} }}");
        for _ in 0..1200 {
            let answer = self.graphql(Some(token), &query, json!({"id": id})).await;
            assert_eq!(answer["errors"], Value::Null, "{answer}");
            let approval = answer["data"]["approval"].clone();
            if !matches!(approval["status"].as_str(), Some("APPROVED" | "EXECUTING")) {
                return approval;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("approval {id} never finished executing");
    }

    /// Like [`TestServer::start`], with extra `awoooi` flags (e.g. `--topology FILE`).
    /// Another replica of this server: its own state (workers, bus, caches) on the same
    /// database and configuration, in this process.
    pub async fn second_replica(&self) -> server::edge::http::AppState {
        server::edge::state::build_state((*self.state.config).clone())
            .await
            .expect("the second replica starts")
    }

    pub async fn start_with(backend: Backend, extra: &[&str]) -> TestServer {
        TestServer::start_configured(backend, extra, "").await
    }

    /// Like [`TestServer::start_with`], with extra TOML appended to the configuration file.
    pub async fn start_configured(backend: Backend, extra: &[&str], toml: &str) -> TestServer {
        TestServer::start_with_env(backend, extra, toml, &[]).await
    }

    /// Like [`TestServer::start_configured`], with environment variables (e.g. S3 credentials)
    /// seen by the configuration.
    pub async fn start_with_env(
        backend: Backend,
        extra: &[&str],
        toml: &str,
        env: &[(&str, &str)],
    ) -> TestServer {
        let ScratchDb {
            url: database_url,
            dir,
            scratch,
        } = ScratchDb::new(backend).await;
        let config_file = dir.join("awoooi.toml");
        // Analyses settle after a short quiet period here (3 s by default).
        const SETTLE: &str = "quiet_seconds = 0.2\nmax_wait_seconds = 2\n";
        let toml = if toml.contains("quiet_seconds") {
            toml.to_owned()
        } else if toml.contains("[brain]\n") {
            toml.replacen("[brain]\n", &format!("[brain]\n{SETTLE}"), 1)
        } else {
            format!("{toml}\n[brain]\n{SETTLE}")
        };
        std::fs::write(
            &config_file,
            format!(
                "[ingest]\nwebhook_secret = \"{WEBHOOK_SECRET}\"\nmax_body_bytes = 65536\n{toml}\n"
            ),
        )
        .unwrap();
        let mut argv: Vec<String> = vec![
            "awoooi".into(),
            "--database-url".into(),
            database_url.clone(),
            "--data-dir".into(),
            dir.to_str().unwrap().into(),
            "--site-root".into(),
            dir.join("site").to_str().unwrap().into(),
            "--config".into(),
            config_file.to_str().unwrap().into(),
        ];
        argv.extend(extra.iter().map(|a| a.to_string()));
        let cli = server::edge::cli::Cli::try_parse_from(argv).unwrap();
        let config = server::edge::config::Config::resolve(&cli, |key| {
            env.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        let state = server::edge::state::build_state(config).await.unwrap();
        let app_state = state.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let header_timeout =
                std::time::Duration::from_secs(state.config.http.header_read_timeout_seconds);
            let app = server::edge::http::router(state);
            server::edge::http::serve_on(listener, app, header_timeout, std::future::pending())
                .await;
        });
        TestServer {
            api: Api::new(base),
            state: app_state,
            database_url,
            task,
            scratch,
        }
    }

    /// Runs the real `awoooi` binary against this server's database.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> CliOutput {
        cli(&self.database_url, args, stdin)
    }

    pub fn add_user(&self, name: &str, role: &str, password: &str) {
        let out = self.cli(&["user", "add", name, "--role", role], Some(password));
        assert!(out.status.success(), "user add failed: {}", out.stderr);
    }

    /// Adds a user with the test password and signs them in; returns the session token.
    pub async fn signed_in(&self, name: &str, role: &str) -> String {
        self.add_user(name, role, PASSWORD);
        self.login(name, PASSWORD).await
    }

    /// Every text-like column of every table the database holds — found by asking it, so a
    /// new table is scanned without being listed here (full-text shadow tables and PostgreSQL's
    /// `tsvector` columns included) — as one string, for leak checks.
    pub async fn dump_text_columns(&self) -> String {
        use sea_orm::{ConnectionTrait, Statement};
        let db = Database::connect(&self.database_url).await.unwrap();
        let backend = db.get_database_backend();
        let list = match backend {
            sea_orm::DatabaseBackend::Postgres => {
                "SELECT table_name AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            }
            _ => "SELECT name FROM sqlite_master WHERE type = 'table'",
        };
        let tables: Vec<String> = db
            .query_all_raw(Statement::from_string(backend, list))
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.try_get::<String>("", "name").unwrap())
            .collect();
        for expected in [
            "knowledge_entries",
            "notification_deliveries",
            "postmortems",
        ] {
            assert!(
                tables.iter().any(|t| t == expected),
                "no table {expected}: {tables:?}"
            );
        }
        let mut out = String::new();
        for table in &tables {
            let sql = match backend {
                sea_orm::DatabaseBackend::Postgres => {
                    format!("SELECT row_to_json(t)::text AS j FROM {table} t")
                }
                _ => format!("SELECT * FROM \"{table}\""),
            };
            let rows = db
                .query_all_raw(Statement::from_string(backend, sql))
                .await
                .unwrap();
            for row in rows {
                for column in row.column_names() {
                    if let Ok(Some(text)) = row.try_get::<Option<String>>("", &column) {
                        out.push_str(&text);
                        out.push('\n');
                    } else if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>>("", &column) {
                        out.push_str(&String::from_utf8_lossy(&bytes));
                        out.push('\n');
                    }
                }
            }
        }
        out
    }

    /// The SQLite database file and its WAL, as bytes.
    pub fn sqlite_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for name in ["awoooi.db", "awoooi.db-wal"] {
            if let Ok(mut b) = std::fs::read(self.scratch.dir.join(name)) {
                bytes.append(&mut b);
            }
        }
        assert!(!bytes.is_empty(), "no SQLite file found");
        bytes
    }

    /// Drops this test's PostgreSQL database while the server still runs.
    pub async fn drop_database_now(&self) {
        let name = self
            .scratch
            .pg_database
            .as_deref()
            .expect("a PostgreSQL test");
        drop_pg_database(name).await;
    }
}

/// A running server's HTTP API: GraphQL, WebSocket subscriptions, forms and raw requests.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
}

impl std::ops::Deref for TestServer {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Api {
    /// Posts one alert or a list of them to the generic webhook as `token`, checks the 202;
    /// returns the receipt.
    pub async fn post_alerts(&self, token: &str, alerts: Value) -> Value {
        let response = self
            .post_json(
                "/api/v1/alerts/webhook",
                Some(token),
                &[],
                alerts.to_string(),
            )
            .await;
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    /// Posts one alert to the generic webhook as `token`; returns the incident it joined.
    pub async fn incident_from_alert(&self, token: &str, alert: Value) -> String {
        self.post_alerts(token, alert).await["incidents"][0]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn new(base: String) -> Api {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Api { base, client }
    }

    pub fn ws_url(&self) -> String {
        format!("{}/graphql/ws", self.base.replacen("http", "ws", 1))
    }

    /// A `graphql-transport-ws` connection as `token`, subscribed to `query` (id `u`).
    pub async fn subscribe(&self, token: &str, query: &str) -> Ws {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
        let mut request = self.ws_url().into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let send = |v: Value| Message::text(v.to_string());
        socket
            .send(send(
                json!({"type": "connection_init", "payload": {"token": token}}),
            ))
            .await
            .unwrap();
        socket
            .send(send(
                json!({"id": "u", "type": "subscribe", "payload": {"query": query}}),
            ))
            .await
            .unwrap();
        socket
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.base))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let response = self
            .graphql(
                None,
                "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
                json!({"u": username, "p": password}),
            )
            .await;
        response["data"]["login"]["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login failed: {response}"))
            .to_owned()
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        match cookie {
            Some(cookie) => self.get_with(path, "cookie", cookie).await,
            None => self
                .client
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        }
    }

    pub async fn get_with(&self, path: &str, header: &str, value: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header(header, value)
            .send()
            .await
            .unwrap()
    }

    /// POSTs `body` as JSON with an optional bearer token and extra headers.
    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: &str) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    pub async fn post_form(
        &self,
        path: &str,
        body: &str,
        cookie: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.unwrap()
    }

    pub async fn form_login(&self, username: &str, password: &str) -> reqwest::Response {
        let body = format!(
            "username={}&password={}",
            username,
            password.replace(' ', "+")
        );
        self.post_form("/auth/login", &body, None).await
    }
}

/// Runs the real `awoooi` binary against `database_url`.
pub fn cli(database_url: &str, args: &[&str], stdin: Option<&str>) -> CliOutput {
    cli_with_env(database_url, args, stdin, &[])
}

/// [`cli`] with extra environment variables (a setting's environment twin).
pub fn cli_with_env(
    database_url: &str,
    args: &[&str],
    stdin: Option<&str>,
    envs: &[(&str, &str)],
) -> CliOutput {
    let mut child = Command::new(env!("CARGO_BIN_EXE_awoooi"))
        .args(args)
        .env("AWOOOI_DATABASE_URL", database_url)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        writeln!(child.stdin.as_mut().unwrap(), "{input}").unwrap();
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    CliOutput {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A server the tests start, where `scripts/setup.sh --e2e` installs it from a registry
/// (`$AWOOOI_TOOLS/bin`, else `~/.cache/awoooi/tools/bin`), or the path in `override_env`.
pub fn installed_tool(binary: &str, override_env: &str) -> PathBuf {
    if let Ok(path) = std::env::var(override_env) {
        return PathBuf::from(path);
    }
    let tools = std::env::var("AWOOOI_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/awoooi/tools")
        });
    let path = tools.join("bin").join(binary);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh --e2e (it installs {binary} from crates.io), \
         or set {override_env}",
        path.display()
    );
    path
}

/// A real `awoooi serve` process on a loopback port, killed (SIGKILL) when dropped.
pub struct Process {
    pub api: Api,
    pub child: std::process::Child,
    pub log: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl std::ops::Deref for Process {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `awoooi serve ARGS --bind 127.0.0.1:<free port>` with `envs` (`RUST_LOG=warn`
    /// unless they set it), its output appended to `log`; returns once `/healthz` answers.
    pub async fn spawn(args: &[&str], envs: &[(&str, &str)], log: PathBuf) -> Process {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.extend(["--bind".to_owned(), format!("127.0.0.1:{port}")]);
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let child = Process::start(&args, &envs, &log);
        let mut process = Process {
            api: Api::new(format!("http://127.0.0.1:{port}")),
            child,
            log,
            args,
            envs,
        };
        process.wait_healthy().await;
        process
    }

    fn start(args: &[String], envs: &[(String, String)], log: &PathBuf) -> std::process::Child {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_awoooi"))
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap()
    }

    /// Kills the process with SIGKILL (no shutdown of any kind) and waits for it.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Asks the process to stop (SIGTERM, a graceful shutdown) and waits up to `wait` for it.
    pub async fn terminate(&mut self, wait: std::time::Duration) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.wait_exit(wait).await
    }

    /// Sets (`Some`) or removes (`None`) an environment variable for the next
    /// [`Process::restart`].
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.envs.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.envs.push((key.to_owned(), value.to_owned()));
        }
    }

    /// Waits up to `wait` for the process to end by itself (a crash point); true if it did.
    pub async fn wait_exit(&mut self, wait: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + wait;
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    /// Starts the same command again on the same port, after [`Process::kill9`].
    pub async fn restart(&mut self) {
        self.child = Process::start(&self.args, &self.envs, &self.log);
        self.wait_healthy().await;
    }

    async fn wait_healthy(&mut self) {
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "awoooi exited ({status}) before answering:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(response) = reqwest::get(format!("{}/healthz", self.base)).await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("awoooi did not answer /healthz within 60 s");
    }
}

/// A TCP proxy that can drop every connection and refuse new ones, as a restarting
/// PostgreSQL does.
pub struct Proxy {
    pub port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    generation: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let generation = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (up2, generation2) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                let born = generation2.load(std::sync::atomic::Ordering::SeqCst);
                let generation = generation2.clone();
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let copy = tokio::io::copy_bidirectional(&mut client, &mut server);
                    let killed = async {
                        while generation.load(std::sync::atomic::Ordering::SeqCst) == born {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = copy => {}
                        _ = killed => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            generation,
        }
    }

    pub fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn up(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}
