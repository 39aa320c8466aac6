//! States stored as text. Each state enum has one spelling per value (its `as_str`) and is
//! read back strictly: an unknown spelling is an error that names the type and the value, never
//! a default. [`stored_as_text!`](crate::stored_as_text) implements [`Stored`] for an enum; with
//! this crate's `sea-orm` feature (turned on by `entity` alone, so the engine's own build and
//! tests stay free of it) it also makes the enum a SeaORM column type, whose read fails on an
//! unknown value with an error naming the type, the value and the row's `id`.

/// A spelling that is none of a state type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`")]
pub struct UnknownValue {
    /// The state type (`ApprovalStatus`).
    pub kind: &'static str,
    pub value: String,
}

/// A state stored as text.
pub trait Stored: Sized + Copy + 'static {
    /// The type's name in errors.
    const NAME: &'static str;
    /// Every value.
    const ALL: &'static [Self];
    /// The stored spelling.
    fn stored(self) -> &'static str;
    /// The value spelled exactly `text`.
    fn from_stored(text: &str) -> Result<Self, UnknownValue> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| v.stored() == text)
            .ok_or_else(|| UnknownValue {
                kind: Self::NAME,
                value: text.to_owned(),
            })
    }
}

/// Implements [`Stored`] (and, with the `sea-orm` feature, the SeaORM column traits) for an
/// enum that has `fn as_str(self) -> &'static str`: `stored_as_text!(Type, [Type::A, Type::B])`.
#[macro_export]
macro_rules! stored_as_text {
    ($ty:ident, [$($value:expr),+ $(,)?]) => {
        impl $crate::stored::Stored for $ty {
            const NAME: &'static str = stringify!($ty);
            const ALL: &'static [Self] = &[$($value),+];
            fn stored(self) -> &'static str {
                <$ty>::as_str(self)
            }
        }
        $crate::__stored_column!($ty);
    };
}

#[cfg(feature = "sea-orm")]
#[doc(hidden)]
pub mod __private {
    pub use sea_orm;
}

#[cfg(feature = "sea-orm")]
#[doc(hidden)]
#[macro_export]
macro_rules! __stored_column {
    ($ty:ident) => {
        impl From<$ty> for $crate::stored::__private::sea_orm::Value {
            fn from(value: $ty) -> Self {
                $crate::stored::__private::sea_orm::Value::String(Some(value.as_str().to_owned()))
            }
        }

        impl $crate::stored::__private::sea_orm::TryGetable for $ty {
            fn try_get_by<I: $crate::stored::__private::sea_orm::ColIdx>(
                res: &$crate::stored::__private::sea_orm::QueryResult,
                index: I,
            ) -> Result<Self, $crate::stored::__private::sea_orm::TryGetError> {
                use $crate::stored::__private::sea_orm::{DbErr, TryGetError, TryGetable};
                let text = <String as TryGetable>::try_get_by(res, index)?;
                <$ty as $crate::stored::Stored>::from_stored(&text).map_err(|unknown| {
                    let column = index
                        .as_str()
                        .map(|c| format!(" in column `{c}`"))
                        .unwrap_or_default();
                    let row = <i32 as TryGetable>::try_get_by(res, "id")
                        .map(|id| format!(" of row {id}"))
                        .unwrap_or_default();
                    TryGetError::DbErr(DbErr::Type(format!("{unknown}{column}{row}")))
                })
            }
        }

        impl $crate::stored::__private::sea_orm::sea_query::ValueType for $ty {
            fn try_from(
                value: $crate::stored::__private::sea_orm::Value,
            ) -> Result<Self, $crate::stored::__private::sea_orm::sea_query::ValueTypeErr> {
                use $crate::stored::__private::sea_orm::{Value, sea_query::ValueTypeErr};
                match value {
                    Value::String(Some(text)) => {
                        <$ty as $crate::stored::Stored>::from_stored(&text)
                            .map_err(|_| ValueTypeErr)
                    }
                    _ => Err(ValueTypeErr),
                }
            }

            fn type_name() -> String {
                stringify!($ty).to_owned()
            }

            fn array_type() -> $crate::stored::__private::sea_orm::sea_query::ArrayType {
                $crate::stored::__private::sea_orm::sea_query::ArrayType::String
            }

            fn column_type() -> $crate::stored::__private::sea_orm::sea_query::ColumnType {
                $crate::stored::__private::sea_orm::sea_query::ColumnType::String(
                    $crate::stored::__private::sea_orm::sea_query::StringLen::None,
                )
            }
        }

        impl $crate::stored::__private::sea_orm::sea_query::Nullable for $ty {
            fn null() -> $crate::stored::__private::sea_orm::Value {
                $crate::stored::__private::sea_orm::Value::String(None)
            }
        }
    };
}

#[cfg(not(feature = "sea-orm"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __stored_column {
    ($ty:ident) => {};
}

#[cfg(test)]
mod tests {
    use super::Stored;
    use crate::policy::{ApprovalStatus, RiskLevel};

    #[test]
    fn every_value_reads_back_and_an_unknown_one_is_named() {
        for status in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::from_stored(status.stored()), Ok(*status));
        }
        let err = RiskLevel::from_stored("low").unwrap_err();
        assert_eq!(err.to_string(), "unknown RiskLevel `low`");
    }
}
