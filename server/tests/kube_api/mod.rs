//! A local stand-in for a Kubernetes API server (no real one can run on these machines). It
//! serves the objects of `fixtures/kube/cluster.json` — written in the API's documented JSON
//! (core/v1, apps/v1, policy/v1, authorization.k8s.io/v1) — and answers the calls AWOOOI makes
//! the way the API reference describes them: GET and LIST with label and field selectors,
//! PATCH (JSON merge, and strategic merge with its list merge keys and `$patch` directives) and
//! DELETE honouring `dryRun=All` (and, as the API server,
//! answering 409 when a write names a `resourceVersion` or precondition the object has moved
//! past), the `scale` and
//! `eviction` subresources (429 with a `Status` when a PodDisruptionBudget allows no
//! disruption), and SelfSubjectAccessReview answered from a rule table. Every request is
//! recorded so tests can check what was sent.
//!
//! Like an API server it can serve HTTPS only, with a certificate from its own CA, and refuse
//! (401) any request without the bearer token of the kubeconfig it writes ([`FakeKube::serve_tls`],
//! [`FakeKube::kubeconfig`]); and its ReplicaSet controller can take time
//! ([`FakeKube::with_controller_delay`]): a pod evicted or deleted is replaced on a schedulable
//! node only after the delay, and only then do the budgets covering it count it healthy again.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use tower::ServiceExt;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
    /// The `Authorization` header as sent.
    pub authorization: Option<String>,
}

impl Recorded {
    pub fn dry_run(&self) -> bool {
        self.query.contains("dryRun=All")
            || self.body["dryRun"] == json!(["All"])
            || self.body["deleteOptions"]["dryRun"] == json!(["All"])
    }
}

/// `(api prefix, resource, namespace or "", name)`.
type Key = (String, String, String, String);

#[derive(Default)]
struct Store {
    objects: BTreeMap<Key, Value>,
    version: u64,
    /// `(verb, resource)` pairs the SelfSubjectAccessReview denies; everything else is allowed.
    denied: Vec<(String, String)>,
    /// Object path → message: PATCHes of it are refused as an admission webhook would.
    refuse_patch: BTreeMap<String, String>,
    recorded: Vec<Recorded>,
    /// `namespace/pod` → its container log (`fixtures/kube/logs.json`).
    logs: BTreeMap<String, String>,
    /// Object path → a change another actor makes right after the next dry-run write to it
    /// (between a re-check and the real write).
    after_dry_run: BTreeMap<String, Value>,
    /// Every request must carry `Authorization: Bearer <token>`.
    token: Option<String>,
    /// How long the ReplicaSet controller takes to replace a pod that left (`None`: never).
    controller_delay: Option<std::time::Duration>,
}

#[derive(Clone, Default)]
pub struct FakeKube(Arc<Mutex<Store>>);

fn plural(kind: &str) -> &'static str {
    match kind {
        "Deployment" => "deployments",
        "ReplicaSet" => "replicasets",
        "Pod" => "pods",
        "Node" => "nodes",
        "Namespace" => "namespaces",
        "PersistentVolumeClaim" => "persistentvolumeclaims",
        "PodDisruptionBudget" => "poddisruptionbudgets",
        "Event" => "events",
        other => panic!("the fake does not serve {other}"),
    }
}

fn prefix_of(api_version: &str) -> String {
    if api_version == "v1" {
        "/api/v1".into()
    } else {
        format!("/apis/{api_version}")
    }
}

/// Where a request points.
struct Target {
    prefix: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse(path: &str) -> Option<Target> {
    let (prefix, rest) = if let Some(rest) = path.strip_prefix("/api/v1/") {
        ("/api/v1".to_owned(), rest)
    } else {
        let rest = path.strip_prefix("/apis/")?;
        let mut parts = rest.splitn(3, '/');
        let (group, version, rest) = (parts.next()?, parts.next()?, parts.next()?);
        (format!("/apis/{group}/{version}"), rest)
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (namespace, rest) = if segments.first() == Some(&"namespaces") && segments.len() >= 3 {
        (Some(segments[1].to_owned()), &segments[2..])
    } else {
        (None, &segments[..])
    };
    Some(Target {
        prefix,
        resource: rest.first()?.to_string(),
        namespace,
        name: rest.get(1).map(|s| s.to_string()),
        subresource: rest.get(2).map(|s| s.to_string()),
    })
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": if code < 300 { "Success" } else { "Failure" },
        "message": message, "reason": reason, "code": code,
    });
    (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(value: &Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// RFC 7386 JSON merge patch (what the strategic merge patches AWOOOI sends amount to).
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// The merge key of a list field, as the API's strategic-merge patch declares it for the
/// objects served here (`patchMergeKey`); other lists are replaced whole.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "env" | "volumes" | "volumeMounts"
        | "imagePullSecrets" => Some("name"),
        "ports" => Some("containerPort"),
        _ => None,
    }
}

/// A strategic-merge patch, as the API server applies one: maps merge; lists with a merge key
/// merge item by item on that key (an item with `$patch: delete` is removed); a map carrying
/// `$patch: replace` replaces the target whole; `null` removes a field.
fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (t, Value::Object(p)) if p.get("$patch").and_then(Value::as_str) == Some("replace") => {
            let mut replacement = Value::Object(p.clone());
            if let Some(map) = replacement.as_object_mut() {
                map.remove("$patch");
            }
            *t = replacement;
        }
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                    continue;
                }
                match (merge_key(k), t.get_mut(k), v) {
                    (Some(key), Some(Value::Array(items)), Value::Array(patches)) => {
                        for item_patch in patches {
                            let id = &item_patch[key];
                            let at = items.iter().position(|i| &i[key] == id);
                            let delete =
                                item_patch.get("$patch").and_then(Value::as_str) == Some("delete");
                            match (at, delete) {
                                (Some(i), true) => {
                                    items.remove(i);
                                }
                                (Some(i), false) => strategic_merge(&mut items[i], item_patch),
                                (None, false) => items.push(item_patch.clone()),
                                (None, true) => {}
                            }
                        }
                    }
                    _ => strategic_merge(t.entry(k.clone()).or_insert(Value::Null), v),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| &labels[k] == v)
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            v.replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/")
                .replace('+', " ")
        })
    })
}

fn selected(object: &Value, query: &str) -> bool {
    let labels = query_param(query, "labelSelector").unwrap_or_default();
    let by_labels =
        labels
            .split(',')
            .filter(|s| !s.is_empty())
            .all(|pair| match pair.split_once('=') {
                Some((k, v)) => object["metadata"]["labels"][k] == v,
                None => false,
            });
    let fields = query_param(query, "fieldSelector").unwrap_or_default();
    let by_fields =
        fields
            .split(',')
            .filter(|s| !s.is_empty())
            .all(|pair| match pair.split_once('=') {
                Some(("spec.nodeName", node)) => object["spec"]["nodeName"] == node,
                Some(("metadata.name", name)) => object["metadata"]["name"] == name,
                _ => false,
            });
    by_labels && by_fields
}

impl FakeKube {
    /// The fixture cluster.
    pub fn from_fixture() -> FakeKube {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/kube/cluster.json"
        ))
        .unwrap();
        let list: Value = serde_json::from_str(&text).unwrap();
        let fake = FakeKube::default();
        {
            let mut store = fake.0.lock().unwrap();
            for item in list["items"].as_array().unwrap() {
                let key = (
                    prefix_of(item["apiVersion"].as_str().unwrap()),
                    plural(item["kind"].as_str().unwrap()).to_owned(),
                    item["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    item["metadata"]["name"].as_str().unwrap().to_owned(),
                );
                let version: u64 = item["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                store.version = store.version.max(version);
                store.objects.insert(key, item.clone());
            }
            let logs = std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/kube/logs.json"
            ))
            .unwrap();
            store.logs = serde_json::from_str(&logs).unwrap();
        }
        fake
    }

    /// Serves on a loopback port; returns its URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    }

    /// Serves HTTPS only, with `tls`'s server certificate; returns its URL.
    pub async fn serve_tls(&self, tls: &Tls) -> String {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let app = Router::new().fallback(handle).with_state(self.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that does not trust the CA ends here.
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app.map_request(
                        |r: hyper::Request<hyper::body::Incoming>| r.map(axum::body::Body::new),
                    ));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        url
    }

    /// A kubeconfig for `url`: its CA certificate file and the bearer token, in the current
    /// context (written in `dir`; returns the kubeconfig's path).
    pub fn kubeconfig(dir: &Path, url: &str, ca_pem: &str, token: &str) -> PathBuf {
        let ca = dir.join("kube-ca.crt");
        std::fs::write(&ca, ca_pem).unwrap();
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: standin
  cluster:
    server: {url}
    certificate-authority: {}
users:
- name: awoooi
  user:
    token: {token}
contexts:
- name: standin
  context:
    cluster: standin
    user: awoooi
    namespace: prod
current-context: standin
",
            ca.display()
        );
        let path = dir.join(format!("kubeconfig-{:08x}", rand::random::<u32>()));
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn deny(&self, verb: &str, resource: &str) {
        self.0
            .lock()
            .unwrap()
            .denied
            .push((verb.into(), resource.into()));
    }

    /// PATCHes of `path` fail as a validating admission webhook's denial would.
    pub fn refuse_patches_of(&self, path: &str, message: &str) {
        self.0
            .lock()
            .unwrap()
            .refuse_patch
            .insert(path.into(), message.into());
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().recorded.clone()
    }

    /// An object by its API path (`/apis/apps/v1/namespaces/prod/deployments/web`).
    pub fn object(&self, path: &str) -> Option<Value> {
        let target = parse(path)?;
        let key = (
            target.prefix,
            target.resource,
            target.namespace.unwrap_or_default(),
            target.name?,
        );
        self.0.lock().unwrap().objects.get(&key).cloned()
    }

    /// The objects of a collection path (`/api/v1/namespaces/prod/pods`).
    pub fn list(&self, path: &str) -> Vec<Value> {
        let target = parse(path).unwrap();
        let namespace = target.namespace.unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .objects
            .iter()
            .filter(|((p, r, ns, _), _)| {
                *p == target.prefix && *r == target.resource && *ns == namespace
            })
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Makes `patch` to the object at `path` (as another actor would) right after the next
    /// dry-run write to it — between a re-check and the real write.
    pub fn edit_after_next_dry_run(&self, path: &str, patch: Value) {
        self.0
            .lock()
            .unwrap()
            .after_dry_run
            .insert(path.into(), patch);
    }

    /// Requests without `Authorization: Bearer <token>` get 401, as the API server answers.
    pub fn require_token(&self, token: &str) {
        self.0.lock().unwrap().token = Some(token.into());
    }

    /// The ReplicaSet controller replaces a pod that left after `delay`.
    pub fn with_controller_delay(self, delay: std::time::Duration) -> FakeKube {
        self.0.lock().unwrap().controller_delay = Some(delay);
        self
    }

    /// The controller's work for `pod`, which just left: after the delay, a pod from the same
    /// ReplicaSet on a schedulable node, counted healthy by the budgets selecting it.
    fn replace_later(&self, store: &Store, pod: &Value) {
        let (Some(delay), Some(hash)) = (
            store.controller_delay,
            pod["metadata"]["labels"]["pod-template-hash"].as_str(),
        ) else {
            return;
        };
        let (fake, mut pod, hash) = (self.clone(), pod.clone(), hash.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let mut store = fake.0.lock().unwrap();
            let left_node = pod["spec"]["nodeName"].clone();
            let nodes: Vec<Value> = store
                .objects
                .iter()
                .filter(|((_, r, _, _), n)| r == "nodes" && n["spec"]["unschedulable"] != true)
                .map(|((_, _, _, name), _)| json!(name))
                .collect();
            let Some(node) = nodes
                .iter()
                .find(|n| **n != left_node)
                .or(nodes.first())
                .cloned()
            else {
                return; // Nowhere to schedule it: it stays Pending, not served here.
            };
            let app = pod["metadata"]["labels"]["app"]
                .as_str()
                .unwrap_or("pod")
                .to_owned();
            let name = format!("{app}-{hash}-r{:04x}", rand::random::<u16>());
            store.version += 1;
            pod["metadata"]["name"] = json!(name);
            pod["metadata"]["resourceVersion"] = json!(store.version.to_string());
            pod["spec"]["nodeName"] = node;
            let namespace = pod["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let labels = pod["metadata"]["labels"].clone();
            store.objects.insert(
                ("/api/v1".into(), "pods".into(), namespace.clone(), name),
                pod,
            );
            for ((_, r, ns, _), budget) in store.objects.iter_mut() {
                if r == "poddisruptionbudgets"
                    && *ns == namespace
                    && labels_match(&budget["spec"]["selector"], &labels)
                {
                    let healthy = budget["status"]["currentHealthy"].as_i64().unwrap_or(0) + 1;
                    let desired = budget["status"]["desiredHealthy"].as_i64().unwrap_or(0);
                    budget["status"]["currentHealthy"] = json!(healthy);
                    budget["status"]["disruptionsAllowed"] = json!((healthy - desired).max(0));
                }
            }
        });
    }

    /// Changes an object in place (as another actor on the cluster would), bumping its
    /// resourceVersion.
    pub fn edit(&self, path: &str, patch: Value) {
        let target = parse(path).unwrap();
        let key = (
            target.prefix,
            target.resource,
            target.namespace.unwrap_or_default(),
            target.name.unwrap(),
        );
        let mut store = self.0.lock().unwrap();
        store.version += 1;
        let version = store.version.to_string();
        let object = store.objects.get_mut(&key).unwrap();
        merge(object, &patch);
        object["metadata"]["resourceVersion"] = json!(version);
    }
}

async fn handle(
    State(fake): State<FakeKube>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let strategic = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/strategic-merge-patch+json"));
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return status(400, "BadRequest", &format!("invalid JSON: {e}")),
        }
    };
    let query = uri.query().unwrap_or_default().to_owned();
    let path = uri.path().to_owned();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut store = fake.0.lock().unwrap();
    store.recorded.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        body: body.clone(),
        authorization: authorization.clone(),
    });
    if let Some(token) = &store.token
        && authorization.as_deref() != Some(format!("Bearer {token}").as_str())
    {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let Some(target) = parse(&path) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    };
    let dry_run = query.contains("dryRun=All")
        || body["dryRun"] == json!(["All"])
        || body["deleteOptions"]["dryRun"] == json!(["All"]);

    if target.resource == "selfsubjectaccessreviews" && method == Method::POST {
        let attributes = &body["spec"]["resourceAttributes"];
        let resource = match attributes["subresource"].as_str() {
            Some(sub) if !sub.is_empty() => {
                format!(
                    "{}/{sub}",
                    attributes["resource"].as_str().unwrap_or_default()
                )
            }
            _ => attributes["resource"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
        let verb = attributes["verb"].as_str().unwrap_or_default().to_owned();
        let denied = store
            .denied
            .iter()
            .any(|(v, r)| *v == verb && *r == resource);
        let mut review = body.clone();
        review["status"] = if denied {
            json!({"allowed": false, "denied": true,
                   "reason": format!("RBAC: no rule allows {verb} on {resource}")})
        } else {
            json!({"allowed": true, "reason": "RBAC: allowed by ClusterRoleBinding \"awoooi-executor\""})
        };
        return (
            StatusCode::CREATED,
            [("content-type", "application/json")],
            review.to_string(),
        )
            .into_response();
    }

    let namespace = target.namespace.clone().unwrap_or_default();
    let Some(name) = target.name.clone() else {
        // A list, in one namespace or all of them.
        if method != Method::GET {
            return status(405, "MethodNotAllowed", "only GET on collections");
        }
        let items: Vec<Value> = store
            .objects
            .iter()
            .filter(|((p, r, ns, _), _)| {
                *p == target.prefix
                    && *r == target.resource
                    && (target.namespace.is_none() || *ns == namespace)
            })
            .map(|(_, o)| o)
            .filter(|o| selected(o, &query))
            .map(|o| {
                // Items of a list carry neither apiVersion nor kind, as the API server's.
                let mut o = o.clone();
                if let Some(map) = o.as_object_mut() {
                    map.remove("apiVersion");
                    map.remove("kind");
                }
                o
            })
            .collect();
        let version = store.version.to_string();
        return ok(&json!({
            "apiVersion": target.prefix.trim_start_matches("/apis/").trim_start_matches("/api/"),
            "kind": "List",
            "metadata": {"resourceVersion": version},
            "items": items,
        }));
    };
    let key: Key = (
        target.prefix.clone(),
        target.resource.clone(),
        namespace.clone(),
        name.clone(),
    );
    let Some(object) = store.objects.get(&key).cloned() else {
        return status(
            404,
            "NotFound",
            &format!("{} \"{name}\" not found", target.resource),
        );
    };
    let object_path = format!(
        "{}/{}{}/{name}",
        target.prefix,
        if namespace.is_empty() {
            String::new()
        } else {
            format!("namespaces/{namespace}/")
        },
        target.resource
    );

    match (method.clone(), target.subresource.as_deref()) {
        (Method::GET, None) => ok(&object),
        (Method::GET, Some("scale")) => ok(&scale_of(&object)),
        // The container log as text, its last `tailLines` lines (all without the parameter).
        (Method::GET, Some("log")) if target.resource == "pods" => {
            let log = store
                .logs
                .get(&format!("{namespace}/{name}"))
                .cloned()
                .unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = query_param(&query, "tailLines")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(lines.len());
            let text = lines[lines.len().saturating_sub(tail)..].join("\n");
            (StatusCode::OK, [("content-type", "text/plain")], text).into_response()
        }
        (Method::PATCH, sub @ (None | Some("scale"))) => {
            if let Some(message) = store.refuse_patch.get(&object_path) {
                return status(
                    400,
                    "BadRequest",
                    &format!(
                        "admission webhook \"policy.example.com\" denied the request: {message}"
                    ),
                );
            }
            // Optimistic concurrency, as the API server: a write that names the version it was
            // decided on is refused when the object has moved on.
            if let Some(wanted) = body["metadata"]["resourceVersion"].as_str()
                && object["metadata"]["resourceVersion"].as_str() != Some(wanted)
            {
                return status(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been \
                         modified; please apply your changes to the latest version and try again",
                        target.resource
                    ),
                );
            }
            let mut changed = object.clone();
            let answer;
            if sub == Some("scale") {
                let replicas = &body["spec"]["replicas"];
                if !replicas.is_i64() || replicas.as_i64() < Some(0) {
                    return status(
                        422,
                        "Invalid",
                        "Scale.spec.replicas: Invalid value: must be greater than or equal to 0",
                    );
                }
                changed["spec"]["replicas"] = replicas.clone();
                // The controllers, instantly: the new replicas are up and ready.
                changed["status"]["replicas"] = replicas.clone();
                changed["status"]["readyReplicas"] = replicas.clone();
                answer = Some(scale_of(&changed));
            } else {
                if strategic {
                    strategic_merge(&mut changed, &body);
                } else {
                    merge(&mut changed, &body);
                }
                answer = None;
            }
            if !dry_run {
                store.version += 1;
                changed["metadata"]["resourceVersion"] = json!(store.version.to_string());
                let generation = changed["metadata"]["generation"].as_i64().unwrap_or(1);
                changed["metadata"]["generation"] = json!(generation + 1);
                store.objects.insert(key, changed.clone());
            } else if let Some(edit) = store.after_dry_run.remove(&object_path) {
                store.version += 1;
                let version = store.version.to_string();
                if let Some(current) = store.objects.get_mut(&key) {
                    merge(current, &edit);
                    current["metadata"]["resourceVersion"] = json!(version);
                }
            }
            ok(&answer.unwrap_or(changed))
        }
        (Method::DELETE, None) => {
            if let Some(wanted) = body["preconditions"]["resourceVersion"].as_str()
                && object["metadata"]["resourceVersion"].as_str() != Some(wanted)
            {
                return status(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {} \"{name}\": Precondition failed: \
                         ResourceVersion in precondition: {wanted}, ResourceVersion in object meta: {}",
                        target.resource,
                        object["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or_default()
                    ),
                );
            }
            if !dry_run {
                store.objects.remove(&key);
                if target.resource == "pods" {
                    fake.replace_later(&store, &object);
                }
            } else if let Some(edit) = store.after_dry_run.remove(&object_path) {
                store.version += 1;
                let version = store.version.to_string();
                if let Some(current) = store.objects.get_mut(&key) {
                    merge(current, &edit);
                    current["metadata"]["resourceVersion"] = json!(version);
                }
            }
            ok(&object)
        }
        (Method::POST, Some("eviction")) if target.resource == "pods" => {
            // The disruption controller's check: every budget selecting the pod must allow one.
            let labels = object["metadata"]["labels"].clone();
            let budgets: Vec<Key> = store
                .objects
                .iter()
                .filter(|((_, r, ns, _), b)| {
                    r == "poddisruptionbudgets"
                        && *ns == namespace
                        && labels_match(&b["spec"]["selector"], &labels)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for budget in &budgets {
                let b = &store.objects[budget];
                if b["status"]["disruptionsAllowed"].as_i64().unwrap_or(0) < 1 {
                    let body = json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Failure",
                        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                        "reason": "TooManyRequests",
                        "details": {"causes": [{
                            "reason": "DisruptionBudget",
                            "message": format!(
                                "The disruption budget {} needs {} healthy pods and has {} currently",
                                b["metadata"]["name"].as_str().unwrap_or_default(),
                                b["status"]["desiredHealthy"], b["status"]["currentHealthy"]),
                        }]},
                        "code": 429,
                    });
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("content-type", "application/json")],
                        body.to_string(),
                    )
                        .into_response();
                }
            }
            if dry_run {
                return status(201, "", "");
            }
            store.objects.remove(&key);
            fake.replace_later(&store, &object);
            for budget in budgets {
                let b = store.objects.get_mut(&budget).unwrap();
                for field in ["disruptionsAllowed", "currentHealthy"] {
                    let n = b["status"][field].as_i64().unwrap_or(0);
                    b["status"][field] = json!(n - 1);
                }
            }
            status(201, "", "")
        }
        _ => status(405, "MethodNotAllowed", "the fake does not serve this call"),
    }
}

fn scale_of(deployment: &Value) -> Value {
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": deployment["metadata"]["name"],
            "namespace": deployment["metadata"]["namespace"],
            "resourceVersion": deployment["metadata"]["resourceVersion"],
        },
        "spec": {"replicas": deployment["spec"]["replicas"]},
        "status": {"replicas": deployment["status"]["replicas"], "selector": "app=web"},
    })
}

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it (EC P-256, valid two
/// days), made by the `openssl` command line in `dir`.
pub struct Tls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl Tls {
    pub fn make(dir: &Path) -> Tls {
        std::fs::create_dir_all(dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("the openssl command line (scripts/setup.sh installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.crt",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=standin-ca",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=kube-apiserver",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        Tls {
            ca_pem: read("ca.crt"),
            cert_pem: read("server.crt"),
            key_pem: read("server.key"),
        }
    }
}
