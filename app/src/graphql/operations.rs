//! Every typed operation the console runs: one `GraphQLQuery` derive per `.graphql`
//! operation, checked against `schema.graphql` at compile time, each sharing the state enums of
//! [`super::states`] (`extern_enums`).

use graphql_client::GraphQLQuery;

use super::{
    AlertStatus, ApprovalStatus, DateTime, Decision, ExecutionStatus, FixOutcome, IncidentStatus,
    JSON, RiskLevel, Severity,
};

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/server_info.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct ServerInfo;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/me.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct Me;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/login.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct Login;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/heartbeat.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct Heartbeat;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/incidents.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct Incidents;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/incident.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct Incident;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/incident_updates.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct IncidentUpdates;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/thinking.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct Thinking;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/topology.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct TopologyPage;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/blast_radius.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct BlastRadiusOf;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/approvals.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct ApprovalList;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/approvals.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct ApprovalOne;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/approvals.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct ApprovalLive;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/approvals.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct ApproveCard;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/approvals.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct RejectCard;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/audit.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct AuditTrail;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/audit.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct AuditCheck;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/audit.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct TrustList;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/knowledge.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct Knowledge;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/finops.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct FinopsPanel;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/dashboard.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct DashboardTiles;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/dashboard.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct DashboardWaste;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/finops.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct RunFinopsScan;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/finops.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct ProposeFinopsFix;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/fire_demo_scenario.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct FireDemoScenario;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/settings.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct NotificationSettings;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/settings.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct SendTestNotification;

#[derive(GraphQLQuery)]
#[graphql(
    schema_path = "../schema.graphql",
    query_path = "src/graphql/settings.graphql",
    response_derives = "Debug, Clone, PartialEq, Serialize",
    extern_enums(
        "ApprovalStatus",
        "RiskLevel",
        "ExecutionStatus",
        "Decision",
        "FixOutcome",
        "IncidentStatus",
        "Severity",
        "AlertStatus"
    )
)]
pub struct RedriveNotification;
