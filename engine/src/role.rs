//! Who a person (or an integration) is to AWOOOI: the roles of the risk matrix.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role, as the API and the CLI spell it (`ADMIN`, `devops`, … — case-insensitive on input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Admin,
    Devops,
    Sre,
    Cto,
    Ciso,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Devops,
        Role::Sre,
        Role::Cto,
        Role::Ciso,
        Role::Viewer,
    ];

    /// The stored and displayed form: `ADMIN`, `DEVOPS`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Devops => "DEVOPS",
            Role::Sre => "SRE",
            Role::Cto => "CTO",
            Role::Ciso => "CISO",
            Role::Viewer => "VIEWER",
        }
    }
}

crate::stored_as_text!(
    Role,
    [
        Role::Admin,
        Role::Devops,
        Role::Sre,
        Role::Cto,
        Role::Ciso,
        Role::Viewer
    ]
);

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; expected one of admin, devops, sre, cto, ciso, viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_and_round_trips() {
        for (input, expect) in [
            ("admin", Role::Admin),
            ("DevOps", Role::Devops),
            (" sre ", Role::Sre),
            ("CTO", Role::Cto),
            ("ciso", Role::Ciso),
            ("viewer", Role::Viewer),
        ] {
            let role: Role = input.parse().unwrap();
            assert_eq!(role, expect, "{input}");
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        }
    }

    #[test]
    fn unknown_role_names_itself_and_the_choices() {
        let err = "root".parse::<Role>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown role `root`; expected one of admin, devops, sre, cto, ciso, viewer"
        );
        assert!("".parse::<Role>().is_err());
    }
}
