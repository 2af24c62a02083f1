//! Typed rows: [`record!`] declares a struct whose fields are the columns a
//! statement reads, its column list and its decoder, once for both backends.

/// Declares a record: a struct whose fields are, in order, the columns of a
/// result, with
/// - `COLUMNS`: the field names joined by `", "`, for the `SELECT` /
///   `RETURNING` list (so the list and the decoder cannot drift apart);
/// - an implementation of [`sqlx::FromRow`] for the rows of every backend
///   (`sqlx::query_as` and `FromRow::from_row` then give the record), which
///   reads the columns by position in field order: no per-row lookup of
///   column names.
///
/// `struct Record -> Target { … }` also implements `From<Record>` for a
/// type with the same fields. Records with a lifetime (`struct Key<'r> { a:
/// &'r str }`) borrow from the row. Other derives (such as `serde::Deserialize`, to read the same record
/// from a JSON array) pass through.
macro_rules! record {
    // `struct Record -> Target { … }`: also converts into `Target`, whose
    // fields are the record's, with the same names.
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident -> $target:ident {
            $($(#[$field_meta:meta])* $field:ident : $ty:ty),+ $(,)?
        }
    ) => {
        $crate::record::record! {
            $(#[$meta])*
            $vis struct $name { $($(#[$field_meta])* $field: $ty),+ }
        }

        impl From<$name> for $target {
            fn from(record: $name) -> $target {
                $target { $($field: record.$field),+ }
            }
        }
    };

    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$lt:lifetime>)? {
            $($(#[$field_meta:meta])* $field:ident : $ty:ty),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name $(<$lt>)? {
            $($(#[$field_meta])* pub(crate) $field: $ty,)+
        }

        impl $(<$lt>)? $name $(<$lt>)? {
            /// The columns of this record, in field order.
            #[allow(dead_code)]
            pub(crate) const COLUMNS: &'static str = $crate::record::record!(@columns $($field),+);
        }

        $crate::record::record!(@from_row $name $(<$lt>)?, [$($field: $ty),+]);
    };

    (@columns $first:ident $(, $rest:ident)*) => {
        concat!(stringify!($first) $(, ", ", stringify!($rest))*)
    };

    // A record that owns its fields decodes from rows of any lifetime.
    (@from_row $name:ident, [$($field:ident: $ty:ty),+]) => {
        $crate::record::record!(@impl $name, 'r, [$($field: $ty),+]);
    };
    // A borrowing record lives as long as the row.
    (@from_row $name:ident <$lt:lifetime>, [$($field:ident: $ty:ty),+]) => {
        $crate::record::record!(@impl $name<$lt>, $lt, [$($field: $ty),+]);
    };

    (@impl $target:ty, $lt:lifetime, [$($field:ident: $ty:ty),+]) => {
        impl<$lt, R: ::sqlx::Row> ::sqlx::FromRow<$lt, R> for $target
        where
            usize: ::sqlx::ColumnIndex<R>,
            $($ty: ::sqlx::Decode<$lt, R::Database> + ::sqlx::Type<R::Database>,)+
        {
            fn from_row(row: &$lt R) -> Result<Self, ::sqlx::Error> {
                let mut index = 0_usize;
                let mut next = || {
                    index += 1;
                    index - 1
                };
                Ok(Self { $($field: row.try_get(next())?,)+ })
            }
        }
    };
}
pub(crate) use record;

#[cfg(test)]
mod tests {
    use sqlx::FromRow;

    super::record! {
        /// A test record.
        #[derive(Debug, PartialEq, serde::Deserialize)]
        struct Sample {
            id: i64,
            /// A documented field.
            name: String,
            note: Option<String>,
        }
    }

    #[derive(Debug, PartialEq)]
    struct Public {
        id: i64,
        name: String,
    }

    super::record! {
        struct Converted -> Public {
            id: i64,
            name: String,
        }
    }

    super::record! {
        struct Borrowed<'r> {
            key: &'r str,
            value: &'r str,
        }
    }

    #[test]
    fn columns_follow_the_fields() {
        assert_eq!(Sample::COLUMNS, "id, name, note");
        assert_eq!(Borrowed::COLUMNS, "key, value");
    }

    #[test]
    fn json_arrays_decode_in_field_order() {
        let sample: Sample = serde_json::from_str(r#"[7, "seven", null]"#).unwrap();
        assert_eq!(sample, Sample { id: 7, name: "seven".into(), note: None });
    }

    #[tokio::test]
    async fn rows_decode_by_position() {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let sql = format!("SELECT 7 AS {0}, 'seven', NULL", "whatever");
        let sample: Sample = sqlx::query_as(&sql).fetch_one(&mut conn).await.unwrap();
        assert_eq!(sample, Sample { id: 7, name: "seven".into(), note: None });
        let row = sqlx::query("SELECT 'k', 'v'").fetch_one(&mut conn).await.unwrap();
        let borrowed = Borrowed::from_row(&row).unwrap();
        assert_eq!((borrowed.key, borrowed.value), ("k", "v"));
        let converted: Converted = sqlx::query_as("SELECT 1, 'one'").fetch_one(&mut conn).await.unwrap();
        assert_eq!(Public::from(converted), Public { id: 1, name: "one".into() });
    }
}
