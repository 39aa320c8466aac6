//! Every typed operation the console runs: one `GraphQLQuery` derive per `.graphql`
//! operation, checked against `schema.graphql` at compile time, each sharing the state enums of
//! [`super::states`] (`extern_enums`).

use graphql_client::GraphQLQuery;

use super::{
    AlertStatus, ApprovalStatus, DateTime, Decision, ExecutionStatus, FixOutcome, IncidentStatus,
    JSON, RiskLevel, Severity, TimelineKind,
};

/// One operation: its `.graphql` document, the derives its response types need, and the shared
/// state enums. (`tt`, not `literal`: the derive reads the path as a bare literal token.)
// rustfmt re-indents attributes inside this macro on every run; it is kept as written.
#[rustfmt::skip]
macro_rules! operation {
    ($name:ident, $path:tt) => {
        #[derive(GraphQLQuery)]
        #[graphql(
            schema_path = "../schema.graphql",
            query_path = $path,
            response_derives = "Debug, Clone, PartialEq, Serialize",
            extern_enums(
                "ApprovalStatus",
                "RiskLevel",
                "ExecutionStatus",
                "Decision",
                "FixOutcome",
                "IncidentStatus",
                "Severity",
                "AlertStatus",
                "TimelineKind"
            )
        )]
        pub struct $name;
    };
}

operation!(ServerInfo, "src/graphql/server_info.graphql");
operation!(Me, "src/graphql/me.graphql");
operation!(Login, "src/graphql/login.graphql");
operation!(Heartbeat, "src/graphql/heartbeat.graphql");
operation!(Incidents, "src/graphql/incidents.graphql");
operation!(Incident, "src/graphql/incident.graphql");
operation!(IncidentTimeline, "src/graphql/timeline.graphql");
operation!(AcknowledgeIncident, "src/graphql/oncall.graphql");
operation!(AssignIncident, "src/graphql/oncall.graphql");
operation!(CommentOnIncident, "src/graphql/oncall.graphql");
operation!(SilenceList, "src/graphql/silences.graphql");
operation!(CreateSilence, "src/graphql/silences.graphql");
operation!(CreateMaintenanceWindow, "src/graphql/silences.graphql");
operation!(ExpireSilence, "src/graphql/silences.graphql");
operation!(SilenceAlert, "src/graphql/silences.graphql");
operation!(OncallPage, "src/graphql/schedules.graphql");
operation!(CreateSchedule, "src/graphql/schedules.graphql");
operation!(CreateEscalationPolicy, "src/graphql/schedules.graphql");
operation!(IncidentUpdates, "src/graphql/incident_updates.graphql");
operation!(Thinking, "src/graphql/thinking.graphql");
operation!(TopologyPage, "src/graphql/topology.graphql");
operation!(BlastRadiusOf, "src/graphql/blast_radius.graphql");
operation!(ApprovalList, "src/graphql/approvals.graphql");
operation!(ApprovalOne, "src/graphql/approvals.graphql");
operation!(ApprovalLive, "src/graphql/approvals.graphql");
operation!(ApproveCard, "src/graphql/approvals.graphql");
operation!(RejectCard, "src/graphql/approvals.graphql");
operation!(IncidentApprovals, "src/graphql/approvals.graphql");
operation!(AuditTrail, "src/graphql/audit.graphql");
operation!(AuditCheck, "src/graphql/audit.graphql");
operation!(TrustList, "src/graphql/audit.graphql");
operation!(Knowledge, "src/graphql/knowledge.graphql");
operation!(FinopsPanel, "src/graphql/finops.graphql");
operation!(DashboardTiles, "src/graphql/dashboard.graphql");
operation!(DashboardWaste, "src/graphql/dashboard.graphql");
operation!(RunFinopsScan, "src/graphql/finops.graphql");
operation!(ProposeFinopsFix, "src/graphql/finops.graphql");
operation!(FireDemoScenario, "src/graphql/fire_demo_scenario.graphql");
operation!(NotificationSettings, "src/graphql/settings.graphql");
operation!(SendTestNotification, "src/graphql/settings.graphql");
operation!(RedriveNotification, "src/graphql/settings.graphql");
