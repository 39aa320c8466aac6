//! FinOps, as the seed draws it: monthly waste, the three tiles (realizable, freed, annual),
//! the recommendations with saving and risk, and waste by kind and by namespace.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::status::short_time;
use crate::graphql::{self, ApprovalStatus};

/// Cents of a two-place decimal string (`"523.60"`), for sums and bars.
fn cents(amount: &str) -> i64 {
    let (whole, frac) = amount.split_once('.').unwrap_or((amount, "0"));
    whole.parse::<i64>().unwrap_or(0) * 100 + frac.parse::<i64>().unwrap_or(0)
}

fn dollars(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// `5760.00` → `5,760`.
fn thousands(amount: &str) -> String {
    let whole = amount.split('.').next().unwrap_or(amount);
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Horizontal bars: label, amount, share of the largest.
fn bars(rows: BTreeMap<String, i64>, testid: &'static str) -> impl IntoView {
    let max = rows.values().copied().max().unwrap_or(1).max(1);
    let mut rows: Vec<(String, i64)> = rows.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    view! {
        <ul class="bars" data-testid=testid>
            {rows.into_iter().map(|(label, amount)| {
                let width = format!("width: {}%", amount * 100 / max);
                view! {
                    <li>
                        <span class="bar-label mono">{label}</span>
                        <span class="bar"><span class="bar-fill" style=width></span></span>
                        <span class="mono">{format!("${}", dollars(amount))}</span>
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// Approvals that went nowhere: the fix may be proposed again.
fn settled_without_fix(status: ApprovalStatus) -> bool {
    matches!(
        status,
        ApprovalStatus::Rejected
            | ApprovalStatus::Voided
            | ApprovalStatus::Expired
            | ApprovalStatus::Superseded
            | ApprovalStatus::Failed
    )
}

/// The recommendation's approval (linked) and, for those who may, a button proposing it (an
/// island).
#[island]
fn ProposeFix(
    /// The finding's kind as the API spells it (`OVERPROVISIONED_NODE`).
    kind: String,
    resource: String,
    namespace: String,
    approval: Option<(String, ApprovalStatus)>,
    may_propose: bool,
) -> impl IntoView {
    let transport = graphql::use_transport().ok();
    let proposed = RwSignal::new(approval);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let testid = format!("propose-{resource}");
    let propose = move |_| {
        let Some(transport) = transport.clone() else {
            return;
        };
        let Some(kind) = serde_json::to_string(&*kind)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
        else {
            error.set(Some(format!("unknown finding kind {kind}")));
            return;
        };
        let variables = graphql::propose_finops_fix::Variables {
            kind,
            resource: resource.clone(),
            namespace: (!namespace.is_empty()).then(|| namespace.clone()),
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            let result = transport.run::<graphql::ProposeFinopsFix>(variables).await;
            busy.set(false);
            match result {
                Ok(data) => {
                    error.set(None);
                    let a = data.propose_finops_fix;
                    proposed.set(Some((a.id, a.status)));
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    view! {
        {move || proposed.get().map(|(id, status)| view! {
            <a href=format!("/approvals/{id}") data-testid="fix-approval">{format!("Approval #{id} {}", status.as_str())}</a>
        })}
        {move || {
            let open = proposed.get().is_some_and(|(_, s)| !settled_without_fix(s));
            (may_propose && !open).then(|| view! {
                <button class="btn btn-small" data-testid=testid.clone() on:click=propose.clone() disabled=move || busy.get()>
                    "Propose fix"
                </button>
            })
        }}
        {move || error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
    }
}

#[component]
pub fn FinopsPage() -> impl IntoView {
    let transport = graphql::use_transport();
    let report = Resource::new(
        || (),
        move |_| {
            let transport = transport.clone();
            async move {
                transport?
                    .run::<graphql::FinopsPanel>(graphql::finops_panel::Variables {})
                    .await
            }
        },
    );
    view! {
        <Title text="FinOps"/>
        <h1 class="page-title">"FinOps"</h1>
        <ScanNow/>
        <Suspense fallback=|| view! { <p class="muted">"Scanning…"</p> }>
            {move || Suspend::new(async move {
                match report.await {
                    Ok(data) => {
                        let r = data.finops_report;
                        let may_propose = data.me.is_some_and(|me| {
                            matches!(format!("{:?}", me.role).as_str(), "ADMIN" | "DEVOPS" | "SRE")
                        });
                        let mut by_kind: BTreeMap<String, i64> = BTreeMap::new();
                        let mut by_namespace: BTreeMap<String, i64> = BTreeMap::new();
                        for f in &r.findings {
                            *by_kind.entry(format!("{:?}", f.kind)).or_default() += cents(&f.saving);
                            let ns = if f.namespace.is_empty() { "(nodes)".to_owned() } else { f.namespace.clone() };
                            *by_namespace.entry(ns).or_default() += cents(&f.saving);
                        }
                        view! {
                            <section class="panel">
                                <p class="muted">{format!("Scanned {} · {}", short_time(&r.scanned_at), r.currency)}</p>
                                <p class="waste">"Monthly waste detected: "<strong data-testid="monthly-waste">{format!("${}", r.monthly_waste)}</strong></p>
                                <div class="tiles">
                                    <div class="tile"><h3>"Realizable"</h3><p class="tile-amount" data-testid="realizable">{format!("${}/mo", r.realizable_monthly)}</p><p class="muted">"PVC deletion, node resize"</p></div>
                                    <div class="tile"><h3>"Freed"</h3><p class="tile-amount" data-testid="freed">{format!("${}/mo", r.freed_monthly)}</p><p class="muted">"Pod cleanup (needs a scale-down)"</p></div>
                                    <div class="tile"><h3>"Annual"</h3><p class="tile-amount" data-testid="annual">{format!("${}/yr", thousands(&r.annual_if_all_fixed))}</p><p class="muted">"if all realizable fixes are made"</p></div>
                                </div>
                            </section>
                            {recommendations(&r.findings, may_propose)}
                            <div class="grid">
                                <section class="panel"><h2>"Waste by kind"</h2>{bars(by_kind, "by-kind")}</section>
                                <section class="panel"><h2>"Waste by namespace"</h2>{bars(by_namespace, "by-namespace")}</section>
                            </div>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The page's island: scans on request, then reloads the page to show the new report.
#[island]
fn ScanNow() -> impl IntoView {
    let scanning = RwSignal::new(false);
    let scan_error = RwSignal::new(None::<String>);
    let scan_transport = graphql::use_transport().ok();
    let scan = move |_| {
        let Some(transport) = scan_transport.clone() else {
            return;
        };
        scanning.set(true);
        leptos::task::spawn_local(async move {
            let result = transport
                .run::<graphql::RunFinopsScan>(graphql::run_finops_scan::Variables {})
                .await;
            scanning.set(false);
            match result {
                Ok(_) => graphql::reload_page(),
                Err(e) => scan_error.set(Some(e.to_string())),
            }
        });
    };
    view! {
        <p>
            <button class="btn" data-testid="scan" on:click=scan disabled=move || scanning.get()>"Scan now"</button>
        </p>
        {move || scan_error.get().map(|e| view! { <p class="form-error" role="alert">{e}</p> })}
    }
}

/// The findings, largest saving first, each with the fix that can be proposed for it.
fn recommendations(
    findings: &[graphql::finops_panel::FinopsPanelFinopsReportFindings],
    may_propose: bool,
) -> impl IntoView + use<> {
    view! {
        <section class="panel">
            <h2>"Top recommendations"</h2>
            <table class="table">
                <thead><tr><th>"Recommendation"</th><th>"Saving"</th><th>"Risk"</th><th>"Why"</th><th>"Fix"</th></tr></thead>
                <tbody>
                    {findings.iter().map(|f| {
                        let risk = f.risk.as_str();
                        let kind = serde_json::to_string(&f.kind)
                            .map(|text| text.trim_matches('"').to_owned())
                            .unwrap_or_default();
                        let approval = f.approval.as_ref().map(|a| (a.id.clone(), a.status));
                        view! {
                            <tr data-testid="recommendation">
                                <td>{f.recommendation.clone()}</td>
                                <td class="mono">{format!("-${}", f.monthly_cost)}</td>
                                <td><span class=format!("pill risk-{}", risk.to_ascii_lowercase())>{risk}</span></td>
                                <td class="muted">{f.detail.clone()}</td>
                                <td>
                                    <ProposeFix
                                        kind=kind
                                        resource=f.resource.clone()
                                        namespace=f.namespace.clone()
                                        approval=approval
                                        may_propose=may_propose
                                    />
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
            <p class="muted">"A proposed fix is an ordinary approval: the policy sets its risk and signatures, it is dry-run, and re-checked before it runs."</p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_and_print_back() {
        assert_eq!(cents("523.60"), 52_360);
        assert_eq!(dollars(52_360), "523.60");
        assert_eq!(dollars(5), "0.05");
        assert_eq!(thousands("5760.00"), "5,760");
        assert_eq!(thousands("480.00"), "480");
        assert_eq!(thousands("1234567.00"), "1,234,567");
    }

    #[test]
    fn only_approvals_that_went_nowhere_may_be_proposed_again() {
        use ApprovalStatus::*;
        for s in [Rejected, Voided, Expired, Superseded, Failed] {
            assert!(settled_without_fix(s), "{s:?}");
        }
        for s in [Pending, Approved, Executing, Executed] {
            assert!(!settled_without_fix(s), "{s:?}");
        }
    }
}
