//! arrow-rs interop (feature `arrow`): hand custmetrics `RecordBatch`es and get them back.
//!
//! polars keeps its own arrow implementation (polars-arrow) and no longer converts to arrow-rs
//! types, so the bridge is the [Arrow C Data Interface]: each column is exported by one library
//! and imported by the other through the two `#[repr(C)]` structs the interface defines. Buffers
//! are shared, not copied: the importing side takes ownership of the exporter's buffers and calls
//! their release callback when done. (Strings and some types may be re-laid-out by the exporter
//! to fit the interface, which polars does for its chunked string views.)
//!
//! Any arrow-rs version that speaks the C Data Interface works with the same data; this module is
//! compiled against arrow-rs 57.
//!
//! [Arrow C Data Interface]: https://arrow.apache.org/docs/format/CDataInterface.html
#![allow(unsafe_code)]

use std::sync::Arc;

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema, from_ffi, to_ffi};
use arrow_array::{Array as _, ArrayRef, RecordBatch, make_array};
use arrow_schema::{Field, Schema};
use polars::prelude::*;
use polars_arrow::ffi as pffi;

use super::load::{LoadOptions, Table, load_frame};
use super::schema::TableKind;
use crate::{Error, Result};

fn interop(message: impl std::fmt::Display) -> Error {
    Error::Format {
        path: "<arrow>".into(),
        message: format!("arrow interop: {message}"),
    }
}

/// One polars column as an arrow-rs array (one chunk: the column is rechunked first).
fn export_column(s: &Series) -> Result<(Field, ArrayRef)> {
    let s = s.rechunk();
    let array = s.to_arrow(0, CompatLevel::newest());
    let field = polars_arrow::datatypes::Field::new(s.name().clone(), array.dtype().clone(), true);
    let c_array = pffi::export_array_to_c(array);
    let c_schema = pffi::export_field_to_c(&field);
    // SAFETY: polars-arrow's `ArrowArray`/`ArrowSchema` and arrow-rs' `FFI_ArrowArray`/
    // `FFI_ArrowSchema` are both the `#[repr(C)]` structs of the Arrow C Data Interface
    // (`transmute` checks that the sizes agree). Ownership of the buffers moves with the structs;
    // polars' release callbacks stay in them and are called by arrow-rs when the array is dropped.
    let (ffi_array, ffi_schema) = unsafe {
        (
            std::mem::transmute::<pffi::ArrowArray, FFI_ArrowArray>(c_array),
            std::mem::transmute::<pffi::ArrowSchema, FFI_ArrowSchema>(c_schema),
        )
    };
    // SAFETY: the structs were just produced by a conforming exporter.
    let data = unsafe { from_ffi(ffi_array, &ffi_schema) }.map_err(interop)?;
    let field = Field::try_from(&ffi_schema).map_err(interop)?;
    Ok((field.with_name(s.name().as_str()), make_array(data)))
}

/// One arrow-rs array as a polars series.
fn import_column(name: &str, array: &ArrayRef) -> Result<Series> {
    let (ffi_array, ffi_schema) = to_ffi(&array.to_data()).map_err(interop)?;
    // SAFETY: as in `export_column`, the two sides' structs are the same C ABI layout; arrow-rs
    // produced them and polars takes ownership (and the release callbacks) from here.
    let (c_array, c_schema) = unsafe {
        (
            std::mem::transmute::<FFI_ArrowArray, pffi::ArrowArray>(ffi_array),
            std::mem::transmute::<FFI_ArrowSchema, pffi::ArrowSchema>(ffi_schema),
        )
    };
    // SAFETY: the schema and array come from a conforming exporter (arrow-rs).
    let field = unsafe { pffi::import_field_from_c(&c_schema) }.map_err(interop)?;
    let imported =
        unsafe { pffi::import_array_from_c(c_array, field.dtype().clone()) }.map_err(interop)?;
    Series::from_arrow(name.into(), imported).map_err(interop)
}

/// Converts a polars `DataFrame` into one arrow-rs `RecordBatch`.
///
/// # Errors
/// [`Error::Format`] when a column type has no arrow-rs counterpart.
pub fn to_record_batch(df: &DataFrame) -> Result<RecordBatch> {
    let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = df
        .columns()
        .iter()
        .map(|c| export_column(c.as_materialized_series()))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(interop)
}

/// Converts arrow-rs `RecordBatch`es (all with the same schema) into one polars `DataFrame`.
///
/// # Errors
/// [`Error::Format`] for batches whose schemas differ or types polars cannot import.
pub fn from_record_batches(batches: &[RecordBatch]) -> Result<DataFrame> {
    let mut out: Option<DataFrame> = None;
    for batch in batches {
        let columns = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, a)| import_column(f.name(), a).map(Column::from))
            .collect::<Result<Vec<_>>>()?;
        let df = DataFrame::new_infer_height(columns).map_err(interop)?;
        out = Some(match out {
            None => df,
            Some(mut acc) => {
                acc.vstack_mut(&df).map_err(interop)?;
                acc
            }
        });
    }
    out.ok_or_else(|| interop("no record batches"))
}

/// Loads a canonical table from arrow-rs `RecordBatch`es, with the same column detection,
/// parsing and row accounting as a file. `name` stands for the file name in messages.
///
/// # Errors
/// As [`from_record_batches`] and [`crate::io::load_table`].
pub fn load_record_batches(
    kind: TableKind,
    name: &str,
    batches: &[RecordBatch],
    options: &LoadOptions,
) -> Result<Table> {
    load_frame(kind, name, from_record_batches(batches)?.lazy(), options)
}

#[cfg(test)]
mod tests {
    use arrow_array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
        TimestampMicrosecondArray, UInt32Array,
    };

    use super::*;

    #[test]
    fn round_trips_every_type_we_emit() {
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "f",
                Arc::new(Float64Array::from(vec![Some(1.5), None, Some(-2.0)])),
            ),
            (
                "i",
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            ),
            ("u", Arc::new(UInt32Array::from(vec![7, 8, 9]))),
            (
                "b",
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            (
                "s",
                Arc::new(StringArray::from(vec![Some("a"), Some("ü"), None])),
            ),
            ("d", Arc::new(Date32Array::from(vec![19000, 19001, 19002]))),
            (
                "t",
                Arc::new(TimestampMicrosecondArray::from(vec![
                    0, 1_000_000, 2_000_000,
                ])),
            ),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let df = from_record_batches(&[batch.clone(), batch.clone()]).unwrap();
        assert_eq!(df.height(), 6);
        assert_eq!(df.column("d").unwrap().dtype(), &DataType::Date);
        assert_eq!(df.column("s").unwrap().str().unwrap().get(1), Some("ü"));
        let back = to_record_batch(&df.slice(0, 3)).unwrap();
        assert_eq!(back.num_rows(), 3);
        for name in ["f", "i", "u", "b", "d", "t"] {
            let a = batch.column_by_name(name).unwrap();
            let b = back.column_by_name(name).unwrap();
            assert_eq!(a.to_data(), b.to_data(), "column {name}");
        }
        // Strings come back as arrow's string view type, with the same values.
        let s =
            arrow_array::cast::AsArray::as_string_view(back.column_by_name("s").unwrap().as_ref());
        assert_eq!((s.value(0), s.value(1), s.is_null(2)), ("a", "ü", true));
    }

    #[test]
    fn loads_a_table_from_record_batches_with_the_usual_accounting() {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "customer_id",
                Arc::new(StringArray::from(vec!["a", "b", "a", ""])) as ArrayRef,
            ),
            (
                "order_date",
                Arc::new(StringArray::from(vec![
                    "2024-01-05",
                    "2024-01-10",
                    "2024-02-03",
                    "2024-02-04",
                ])),
            ),
            (
                "amount",
                Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0, 5.0])),
            ),
        ])
        .unwrap();
        let t = load_record_batches(
            TableKind::Transactions,
            "orders (arrow)",
            &[batch],
            &LoadOptions::default(),
        )
        .unwrap();
        assert_eq!(t.accounting.rows_read, 4);
        assert_eq!(
            t.accounting.rows_rejected, 1,
            "the row without a customer id"
        );
        assert_eq!(t.frame.height(), 3);
    }
}
