pub use super::api_token::Entity as ApiToken;
pub use super::session::Entity as Session;
pub use super::user::Entity as User;
