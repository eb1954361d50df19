//! A text column of a Parquet file read as its dictionary keys, without a value per row.
//!
//! Writers (pyarrow, Spark, DuckDB, polars) store a low-cardinality text column — a region, a
//! sales channel, a currency — as a dictionary page per row group and data pages of integer
//! keys into it. polars 0.55 decodes such a column into one 16-byte string view per row (and
//! casting it to `Categorical` hashes each row again) unless polars itself wrote the column as a
//! Categorical. At 10M rows, three such columns cost ~1 s of CPU and ~2 s of the kernel zeroing
//! fresh pages (BENCHMARKS.md, twenty-third session). Here the keys are decoded as they are
//! (polars-parquet's own decoder for its Categoricals), and each row group's few dictionary
//! values are mapped to the global categories once.
//!
//! Whether a column qualifies is decided from the file's footer before the scan
//! ([`dictionary_columns`]: text, one leaf, a dictionary page in every row group). A data page
//! that a writer fell back to plain encoding for (when the dictionary grew too large) is seen
//! only while decoding: [`values_at`] then gives `None`, and the caller reads that column the
//! ordinary way.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, Utf8ViewArray};
use polars_arrow::datatypes::{
    ArrowDataType, DTYPE_CATEGORICAL_NEW, Field as ArrowField, IntegerType, Metadata,
};
use polars_parquet::read::{
    BasicDecompressor, ColumnChunkMetadata, PageReader, PhysicalType, PrimitiveConvertedType,
    PrimitiveLogicalType, column_iter_to_arrays, read_metadata,
};

/// Which of `names` the Parquet file at `path` holds as dictionary-encoded text in every row
/// group, by its footer; none when the footer cannot be read (the scan then says why).
pub(super) fn dictionary_columns<'a>(path: &Path, names: &[&'a str]) -> Vec<&'a str> {
    let Some(metadata) = File::open(path)
        .ok()
        .and_then(|mut f| read_metadata(&mut f).ok())
    else {
        return Vec::new();
    };
    names
        .iter()
        .copied()
        .filter(|name| {
            metadata
                .row_groups
                .iter()
                .all(|group| text_chunk(group.columns_under_root_iter(name)).is_some())
        })
        .collect()
}

/// The one leaf of a column in a row group, when it is text with a dictionary page.
fn text_chunk<'a>(
    chunks: Option<impl Iterator<Item = &'a ColumnChunkMetadata>>,
) -> Option<&'a ColumnChunkMetadata> {
    let mut chunks = chunks?;
    let chunk = chunks.next()?;
    if chunks.next().is_some() || chunk.dictionary_page_offset().is_none() {
        return None;
    }
    let primitive = &chunk.descriptor().descriptor.primitive_type;
    let is_text = primitive.physical_type == PhysicalType::ByteArray
        && (matches!(primitive.logical_type, Some(PrimitiveLogicalType::String))
            || matches!(primitive.converted_type, Some(PrimitiveConvertedType::Utf8)));
    is_text.then_some(chunk)
}

/// The values of column `name` of the Parquet file at `path` at the file rows `rows` (0-based,
/// in any order; a scan keeps them ascending), as a `Categorical` of the global categories.
/// Only a few row groups' keys are held at a time (a wave of them, decoded in parallel), so a
/// partition of a large file costs the rows it keeps. `None` when a page is not
/// dictionary-encoded (see the module's documentation) or the file cannot be read this way.
pub(super) fn values_at(path: &Path, name: &str, rows: &[IdxSize]) -> Option<Column> {
    use rayon::prelude::*;
    let metadata = read_metadata(&mut File::open(path).ok()?).ok()?;
    // The positions of `rows` in ascending file order (a scan's rows are already).
    let ascending = rows.windows(2).all(|w| w.first() < w.last());
    let order: Vec<usize> = match ascending {
        true => Vec::new(),
        false => {
            let mut order: Vec<usize> = (0..rows.len()).collect();
            order.sort_by_key(|&p| rows.get(p).copied());
            order
        }
    };
    let position = |i: usize| {
        if ascending {
            i
        } else {
            order.get(i).copied().unwrap_or(i)
        }
    };
    // The row groups holding some of the rows, each with the positions (in file order) of its
    // rows.
    struct Span<'a> {
        chunk: &'a ColumnChunkMetadata,
        group_start: usize,
        group_rows: usize,
        positions: std::ops::Range<usize>,
    }
    let mut spans = Vec::new();
    let mut next = 0usize;
    let mut group_start = 0usize;
    for group in &metadata.row_groups {
        let group_end = group_start + group.num_rows();
        let first = next;
        while next < rows.len() && (rows.get(position(next)).copied()? as usize) < group_end {
            next += 1;
        }
        if next > first {
            spans.push(Span {
                chunk: text_chunk(group.columns_under_root_iter(name))?,
                group_start,
                group_rows: group.num_rows(),
                positions: first..next,
            });
        }
        group_start = group_end;
    }
    if next < rows.len() {
        return None;
    }
    // Our codes: 0 for a null, then the distinct values from 1, in the order met.
    let mut distinct: Vec<String> = Vec::new();
    let mut code_of: HashMap<String, IdxSize> = HashMap::new();
    let mut codes: Vec<IdxSize> = vec![0; rows.len()];
    // Row groups are decoded on every core a few at a time (one after another, three text
    // columns of a 10M-row file kept one core idle for ~0.25 s), so that only a few groups'
    // keys are held at once; their dictionaries are met in file order, as one pass would.
    let wave = 4 * rayon::current_num_threads().max(1);
    for spans in spans.chunks(wave) {
        let decoded: Vec<Option<Vec<Box<dyn Array>>>> = spans
            .par_iter()
            .map(|span| decode_keys(path, span.chunk, name))
            .collect();
        let mut decoded_with_codes = Vec::with_capacity(decoded.len());
        for arrays in decoded {
            let arrays = arrays?;
            let local = dictionary_codes(&arrays, &mut distinct, &mut code_of)?;
            decoded_with_codes.push((arrays, local));
        }
        let group_codes: Vec<Option<Vec<IdxSize>>> = spans
            .par_iter()
            .zip(&decoded_with_codes)
            .map(|(span, (arrays, local))| {
                keyed_codes(arrays, local).filter(|codes| codes.len() == span.group_rows)
            })
            .collect();
        for (span, group_codes) in spans.iter().zip(group_codes) {
            let group_codes = group_codes?;
            let range = span.positions.clone();
            if ascending && range.len() == group_codes.len() {
                // Every row of the group, in order.
                codes.get_mut(range)?.copy_from_slice(&group_codes);
                continue;
            }
            for i in range {
                let p = position(i);
                let row = (rows.get(p).copied()? as usize).checked_sub(span.group_start)?;
                *codes.get_mut(p)? = group_codes.get(row).copied()?;
            }
        }
    }
    into_categorical(name, &distinct, codes)
}

/// One row group's column chunk decoded as its dictionaries and keys, by polars-parquet's
/// decoder for polars' own Categoricals (the field says so).
fn decode_keys(
    path: &Path,
    chunk: &ColumnChunkMetadata,
    name: &str,
) -> Option<Vec<Box<dyn Array>>> {
    let mut file = File::open(path).ok()?;
    // A damaged footer may point anywhere: read only what the file holds.
    let range = chunk.byte_range();
    if range.end > file.metadata().ok()?.len() {
        return None;
    }
    let mut bytes = vec![0u8; usize::try_from(range.end.checked_sub(range.start)?).ok()?];
    file.seek(SeekFrom::Start(range.start)).ok()?;
    file.read_exact(&mut bytes).ok()?;
    let pages = PageReader::new(
        std::io::Cursor::new(polars_buffer::Buffer::from(bytes)),
        chunk,
        vec![],
        usize::MAX,
    );
    let mut field_metadata = Metadata::new();
    field_metadata.insert(DTYPE_CATEGORICAL_NEW.into(), "".into());
    let field = ArrowField::new(
        name.into(),
        ArrowDataType::Dictionary(
            IntegerType::UInt32,
            Box::new(ArrowDataType::Utf8View),
            false,
        ),
        true,
    )
    .with_metadata(field_metadata);
    let (arrays, _) = column_iter_to_arrays(
        vec![BasicDecompressor::new(pages, vec![])],
        vec![&chunk.descriptor().descriptor.primitive_type],
        field,
        None,
    )
    .ok()?;
    Some(arrays)
}

/// Each decoded array's dictionary as our codes (0 for a null), each value looked up once;
/// values not met before are added to `distinct` in dictionary order.
fn dictionary_codes(
    arrays: &[Box<dyn Array>],
    distinct: &mut Vec<String>,
    code_of: &mut HashMap<String, IdxSize>,
) -> Option<Vec<Vec<IdxSize>>> {
    let mut locals = Vec::with_capacity(arrays.len());
    for array in arrays {
        let dictionary = array.as_any().downcast_ref::<DictionaryArray<u32>>()?;
        let values = dictionary
            .values()
            .as_any()
            .downcast_ref::<Utf8ViewArray>()?;
        let mut local: Vec<IdxSize> = Vec::with_capacity(values.len());
        for value in values.iter() {
            local.push(match value {
                None => 0,
                Some(v) => match code_of.get(v) {
                    Some(&c) => c,
                    None => {
                        distinct.push(v.to_string());
                        let c = IdxSize::try_from(distinct.len()).ok()?;
                        code_of.insert(v.to_string(), c);
                        c
                    }
                },
            });
        }
        locals.push(local);
    }
    Some(locals)
}

/// A row group's codes, a row each: each key's entry in its array's dictionary codes.
fn keyed_codes(arrays: &[Box<dyn Array>], locals: &[Vec<IdxSize>]) -> Option<Vec<IdxSize>> {
    let mut out = Vec::with_capacity(arrays.iter().map(|a| a.len()).sum());
    for (array, local) in arrays.iter().zip(locals) {
        let keys = array
            .as_any()
            .downcast_ref::<DictionaryArray<u32>>()?
            .keys();
        match keys.validity() {
            None => {
                for &k in keys.values().iter() {
                    out.push(local.get(k as usize).copied()?);
                }
            }
            Some(_) => {
                for key in keys.iter() {
                    out.push(match key {
                        Some(k) => local.get(*k as usize).copied()?,
                        None => 0,
                    });
                }
            }
        }
    }
    Some(out)
}

/// Our codes as a `Categorical` of the global categories: the distinct values are cast once,
/// with a null in front for code 0, and each row takes its code's entry (a gather, not a
/// lookup per row).
fn into_categorical(name: &str, distinct: &[String], codes: Vec<IdxSize>) -> Option<Column> {
    let dtype = DataType::from_categories(Categories::global());
    let categories: StringChunked = std::iter::once(None)
        .chain(distinct.iter().map(|v| Some(v.as_str())))
        .collect_ca(name.into());
    let categories = categories.cast(&dtype).ok()?;
    categories
        .take(&IdxCa::from_vec(name.into(), codes))
        .ok()
        .map(Column::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, frame: &mut DataFrame, rows_per_group: usize) {
        ParquetWriter::new(File::create(path).unwrap())
            .with_row_group_size(Some(rows_per_group))
            .finish(frame)
            .unwrap();
    }

    fn text(c: &Column) -> Vec<Option<String>> {
        c.cast(&DataType::String)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    fn all_rows(n: usize) -> Vec<IdxSize> {
        (0..n).map(|i| i as IdxSize).collect()
    }

    #[test]
    fn a_dictionary_column_is_read_at_any_rows_over_row_groups_with_nulls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        // Row groups of 3 rows: each has its own dictionary, in another order.
        let region: Vec<Option<&str>> = vec![
            Some("north"),
            None,
            Some("a region with a name longer than twelve bytes"),
            Some("south"),
            Some("north"),
            Some("south"),
            None,
            None,
            Some("east"),
            Some("north"),
        ];
        let mut frame = df!(
            "region" => &region,
            "amount" => (0..10).map(f64::from).collect::<Vec<_>>(),
        )
        .unwrap();
        write(&path, &mut frame, 3);
        assert_eq!(
            dictionary_columns(&path, &["amount", "region"]),
            vec!["region"]
        );
        let at = |rows: &[IdxSize]| {
            let expected: Vec<Option<String>> = rows
                .iter()
                .map(|&r| region[r as usize].map(str::to_string))
                .collect();
            let column = values_at(&path, "region", rows).expect("dictionary-encoded");
            assert!(matches!(column.dtype(), DataType::Categorical(..)));
            assert_eq!(column.name().as_str(), "region");
            assert_eq!(text(&column), expected, "{rows:?}");
        };
        at(&all_rows(10));
        // A partition's rows: some row groups skipped, repeated and unordered rows.
        at(&[2, 9]);
        at(&[9, 0, 4, 4, 7]);
        at(&[]);
        assert!(values_at(&path, "region", &[10]).is_none());
    }

    #[test]
    fn a_column_of_more_row_groups_than_a_wave_keeps_every_row() {
        // Sixty-one row groups, decoded a wave at a time (4 x threads), each with its own
        // dictionary, growing from group to group.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let n = 300_005;
        let region: Vec<Option<String>> = (0..n)
            .map(|i| (i % 11 != 0).then(|| format!("r{}", (i / 20_000 + i % 3) % 40)))
            .collect();
        let mut frame = df!("region" => &region).unwrap();
        write(&path, &mut frame, 5_000);
        let rows = all_rows(n);
        let column = values_at(&path, "region", &rows).expect("dictionary-encoded");
        assert_eq!(text(&column), region);
        // A partition's rows: every seventh.
        let some: Vec<IdxSize> = (0..n as IdxSize).step_by(7).collect();
        let column = values_at(&path, "region", &some).expect("dictionary-encoded");
        let expected: Vec<Option<String>> =
            some.iter().map(|&r| region[r as usize].clone()).collect();
        assert_eq!(text(&column), expected);
    }

    /// Written by pyarrow (testdata/README.md): `region` dictionary-encoded throughout, `city`
    /// falling back to plain pages once its dictionary page is full, as pyarrow does for a
    /// column of many values; three row groups.
    fn pyarrow_file() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/formats/pyarrow_dictionary_fallback.parquet")
    }

    #[test]
    fn a_column_written_by_pyarrow_is_read_by_its_keys_unless_it_fell_back_to_plain() {
        let path = pyarrow_file();
        let frame = LazyFrame::scan_parquet(
            PlRefPath::try_from_path(&path).unwrap(),
            ScanArgsParquet::default(),
        )
        .unwrap()
        .collect()
        .unwrap();
        // Both have a dictionary page in every row group; city's plain pages show only when
        // decoded.
        assert_eq!(
            dictionary_columns(&path, &["region", "city", "amount"]),
            vec!["region", "city"]
        );
        let rows = all_rows(frame.height());
        let region = values_at(&path, "region", &rows).expect("dictionary-encoded");
        assert_eq!(text(&region), text(frame.column("region").unwrap()));
        assert!(region.null_count() > 0);
        assert!(values_at(&path, "city", &rows).is_none());
    }

    #[test]
    fn a_column_of_distinct_values_polars_wrote_plain_is_left_to_the_ordinary_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let ids: Vec<String> = (0..100_000).map(|i| format!("customer-{i:08}")).collect();
        let mut frame = df!("id" => &ids).unwrap();
        write(&path, &mut frame, 1_000_000);
        assert!(dictionary_columns(&path, &["id"]).is_empty());
    }

    #[test]
    fn what_is_not_text_or_not_in_the_file_is_left_to_the_ordinary_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut frame = df!(
            "region" => ["north", "south"],
            "amount" => [1.0, 2.0],
        )
        .unwrap();
        write(&path, &mut frame, 10);
        assert!(dictionary_columns(&path, &["amount", "no_such_column"]).is_empty());
        let missing = dir.path().join("missing.parquet");
        assert!(dictionary_columns(&missing, &["region"]).is_empty());
        assert!(values_at(&missing, "region", &[0]).is_none());
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "region\nnorth\n").unwrap();
        assert!(dictionary_columns(&csv, &["region"]).is_empty());
        assert!(values_at(&csv, "region", &[0]).is_none());
    }
}
