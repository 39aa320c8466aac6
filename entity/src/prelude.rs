pub use super::alert::Entity as Alert;
pub use super::api_token::Entity as ApiToken;
pub use super::incident::Entity as Incident;
pub use super::incident_vault::Entity as IncidentVault;
pub use super::ingest_receipt::Entity as IngestReceipt;
pub use super::session::Entity as Session;
pub use super::user::Entity as User;
