//! [`KeyPart`] for the id and time types of other crates, each behind the feature named after
//! its crate, as the orphan rule keeps users from writing these impls themselves.
//!
//! Texts are injective and need no escaping: ids in their usual form, date-times in ISO 8601
//! *basic* format (`20240501T123000.25Z`: the extended format's `:` would be escaped as `%3A`
//! in every key). Date-times with an offset compare equal when they are the same instant, so
//! they are written in UTC; fractions of a second are written without trailing zeros.

#[cfg(any(
    feature = "uuid",
    feature = "ulid",
    feature = "time",
    feature = "chrono"
))]
use super::KeyPart;
#[cfg(any(feature = "time", feature = "chrono"))]
use super::KeyWriter;

/// `67e55044-10b1-426f-9247-bb680e5fe0c8` (hyphenated, lowercase).
#[cfg(feature = "uuid")]
impl KeyPart for uuid::Uuid {
    fn write_key_part(&self, out: &mut super::KeyWriter<'_>) {
        out.write_str(
            self.hyphenated()
                .encode_lower(&mut uuid::Uuid::encode_buffer()),
        );
    }
}

/// `01ARZ3NDEKTSV4RRFFQ69G5FAV` (Crockford base32).
#[cfg(feature = "ulid")]
impl KeyPart for ulid::Ulid {
    fn write_key_part(&self, out: &mut super::KeyWriter<'_>) {
        out.write_display(self);
    }
}

/// `20240501` (`YYYYMMDD`); years outside 0–9999 with a sign and at least four digits
/// (`+100000101`, `-00010101`), so that the year's digits are always told apart.
#[cfg(any(feature = "time", feature = "chrono"))]
fn write_date(out: &mut KeyWriter<'_>, year: i32, month: u32, day: u32) {
    if (0..=9999).contains(&year) {
        out.write_display(&format_args!("{year:04}{month:02}{day:02}"));
    } else {
        out.write_display(&format_args!("{year:+05}{month:02}{day:02}"));
    }
}

/// `123000` (`HHMMSS`), then `.` and the fraction of a second without trailing zeros, if any.
/// A leap second (`nanos` ≥ 1 s, as chrono stores it) is second 60.
#[cfg(any(feature = "time", feature = "chrono"))]
fn write_time(out: &mut KeyWriter<'_>, hour: u32, minute: u32, second: u32, nanos: u32) {
    let (second, nanos) = match nanos.checked_sub(1_000_000_000) {
        Some(rest) => (second.saturating_add(1), rest),
        None => (second, nanos),
    };
    out.write_display(&format_args!("{hour:02}{minute:02}{second:02}"));
    if nanos > 0 {
        let mut fraction = nanos;
        let mut digits = 9;
        while fraction % 10 == 0 {
            fraction /= 10;
            digits -= 1;
        }
        out.write_display(&format_args!(".{fraction:0digits$}"));
    }
}

#[cfg(feature = "time")]
mod time_impls {
    use super::{KeyPart, KeyWriter, write_date, write_time};

    fn date(out: &mut KeyWriter<'_>, d: time::Date) {
        write_date(
            out,
            d.year(),
            u32::from(u8::from(d.month())),
            u32::from(d.day()),
        );
    }

    fn time_of_day(out: &mut KeyWriter<'_>, t: time::Time) {
        let (h, m, s, n) = t.as_hms_nano();
        write_time(out, h.into(), m.into(), s.into(), n);
    }

    /// `20240501`.
    impl KeyPart for time::Date {
        fn write_key_part(&self, out: &mut KeyWriter<'_>) {
            date(out, *self);
        }
    }

    /// `123000.25`.
    impl KeyPart for time::Time {
        fn write_key_part(&self, out: &mut KeyWriter<'_>) {
            time_of_day(out, *self);
        }
    }

    /// `20240501T123000` (no offset).
    impl KeyPart for time::PrimitiveDateTime {
        fn write_key_part(&self, out: &mut KeyWriter<'_>) {
            date(out, self.date());
            out.write_str("T");
            time_of_day(out, self.time());
        }
    }

    /// The instant in UTC: `20240501T123000Z`. (At the edges of `time`'s range, where the
    /// instant has no UTC date-time, the local one and its offset: `…T235959+0100`.)
    impl KeyPart for time::OffsetDateTime {
        fn write_key_part(&self, out: &mut KeyWriter<'_>) {
            match self.checked_to_offset(time::UtcOffset::UTC) {
                Some(utc) => {
                    time::PrimitiveDateTime::new(utc.date(), utc.time()).write_key_part(out);
                    out.write_str("Z");
                }
                None => {
                    time::PrimitiveDateTime::new(self.date(), self.time()).write_key_part(out);
                    let (h, m, s) = self.offset().as_hms();
                    let sign = if self.offset().is_negative() {
                        "-"
                    } else {
                        "+"
                    };
                    out.write_display(&format_args!(
                        "{sign}{:02}{:02}{:02}",
                        h.unsigned_abs(),
                        m.unsigned_abs(),
                        s.unsigned_abs()
                    ));
                }
            }
        }
    }
}

#[cfg(feature = "chrono")]
mod chrono_impls {
    use chrono::{Datelike, Timelike};

    use super::{KeyPart, KeyWriter, write_date, write_time};

    /// `20240501`.
    impl KeyPart for chrono::NaiveDate {
        fn write_key_part(&self, out: &mut KeyWriter<'_>) {
            write_date(out, self.year(), self.month(), self.day());
        }
    }

    /// `123000.25` (a leap second is second 60).
    impl KeyPart for chrono::NaiveTime {
        fn write_key_part(&self, out: &mut KeyWriter<'_>) {
            write_time(
                out,
                self.hour(),
                self.minute(),
                self.second(),
                self.nanosecond(),
            );
        }
    }

    /// `20240501T123000` (no offset).
    impl KeyPart for chrono::NaiveDateTime {
        fn write_key_part(&self, out: &mut KeyWriter<'_>) {
            self.date().write_key_part(out);
            out.write_str("T");
            self.time().write_key_part(out);
        }
    }

    /// The instant in UTC, whatever the time zone: `20240501T123000Z`.
    impl<Tz: chrono::TimeZone> KeyPart for chrono::DateTime<Tz> {
        fn write_key_part(&self, out: &mut KeyWriter<'_>) {
            self.naive_utc().write_key_part(out);
            out.write_str("Z");
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(any(
        feature = "uuid",
        feature = "ulid",
        feature = "time",
        feature = "chrono"
    ))]
    use crate::key::key_part_to_string as text;

    /// Asserts that `values` (all different) have different texts, none of them escaped.
    #[cfg(any(
        feature = "uuid",
        feature = "ulid",
        feature = "time",
        feature = "chrono"
    ))]
    fn assert_injective_and_plain<T: crate::KeyPart>(values: &[T]) {
        let texts: std::collections::HashSet<String> = values.iter().map(text).collect();
        assert_eq!(texts.len(), values.len(), "{texts:?}");
        for t in &texts {
            assert!(!t.contains('%'), "{t} is escaped");
        }
    }

    #[cfg(feature = "uuid")]
    #[test]
    fn uuids_are_hyphenated_lowercase() {
        let id = uuid::Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8);
        assert_eq!(text(&id), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert_injective_and_plain(&[id, uuid::Uuid::nil(), uuid::Uuid::max()]);
    }

    #[cfg(feature = "ulid")]
    #[test]
    fn ulids_are_crockford_base32() {
        let id = ulid::Ulid::from_string("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
        assert_eq!(text(&id), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_injective_and_plain(&[id, ulid::Ulid::nil(), ulid::Ulid::from(u128::MAX)]);
    }

    #[cfg(feature = "time")]
    #[test]
    fn time_date_times_are_iso_8601_basic_in_utc() {
        use time::macros::{date, datetime, time};
        assert_eq!(
            text(&datetime!(2024-05-01 12:30:00 UTC)),
            "20240501T123000Z"
        );
        assert_eq!(
            text(&datetime!(2024-05-01 14:30:00.25 +02:00)),
            "20240501T123000.25Z",
            "one instant, one key, whatever the offset"
        );
        assert_eq!(
            text(&datetime!(2024-05-01 12:30:00.000_000_001)),
            "20240501T123000.000000001"
        );
        assert_eq!(text(&date!(2024 - 05 - 01)), "20240501");
        assert_eq!(text(&time!(09:05:01.5)), "090501.5");
        assert_injective_and_plain(&[
            datetime!(2024-05-01 12:30:00 UTC),
            datetime!(2024-05-01 12:30:00.1 UTC),
            datetime!(2024-05-01 12:30:00.01 UTC),
            datetime!(2024-05-01 12:30:01 UTC),
            datetime!(0001-01-01 00:00:00 UTC),
        ]);
        assert_injective_and_plain(&[
            date!(2024 - 05 - 01),
            date!(2024 - 05 - 10),
            date!(0001 - 01 - 01),
        ]);
    }

    #[cfg(feature = "chrono")]
    #[test]
    fn chrono_date_times_are_iso_8601_basic_in_utc() {
        use chrono::{FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
        let day = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
        let utc = Utc.from_utc_datetime(&day.and_hms_milli_opt(12, 30, 0, 250).unwrap());
        assert_eq!(text(&utc), "20240501T123000.25Z");
        let paris = utc.with_timezone(&FixedOffset::east_opt(7200).unwrap());
        assert_eq!(
            text(&paris),
            text(&utc),
            "one instant, one key, whatever the zone"
        );
        assert_eq!(text(&day), "20240501");
        assert_eq!(text(&day.and_hms_opt(0, 0, 0).unwrap()), "20240501T000000");
        let leap = NaiveTime::from_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        assert_eq!(text(&leap), "235960.5", "a leap second is second 60");
        let just_before = NaiveTime::from_hms_nano_opt(23, 59, 59, 500_000_000).unwrap();
        assert_injective_and_plain(&[leap, just_before, NaiveTime::MIN]);
        let far = [
            NaiveDate::from_ymd_opt(-1, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(1, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(10000, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(1000, 1, 1).unwrap(),
        ];
        assert_injective_and_plain(&far);
        assert_eq!(text(&far[0]), "-00010101");
        assert_eq!(text(&far[2]), "+100000101");
    }
}
