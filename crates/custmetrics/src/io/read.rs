//! Finding and opening input files: globs, stdin, format and delimiter sniffing, gzip, text
//! encodings, workbooks.
//!
//! Every file becomes a lazy polars scan with a `__row` index column (0-based data row), so that
//! only the columns a job needs are read and every rejected value can be traced back to its row.
//! CSV is scanned with every column as text: parsing is ours (see [`super::parse`]), so that each
//! bad value is counted with a reason instead of becoming a silent null. What is not UTF-8 CSV
//! (gzip, Windows-1252 or UTF-16 text, a workbook's sheet) is first turned into a temporary UTF-8
//! CSV, so that one pipeline reads everything. Typed files (Parquet, Arrow IPC) get their column
//! types normalised (see `normalize_typed`).

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::Serialize;

use crate::{Error, Result};

/// Name of the row-index column added to every scan.
pub(crate) const ROW: &str = "__row";

/// The file formats custmetrics reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Delimited text.
    Csv,
    /// Gzip-compressed delimited text.
    CsvGzip,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC / Feather v2.
    Ipc,
    /// An Excel workbook (Office Open XML, `.xlsx` / `.xlsm`); one sheet is read.
    Xlsx,
    /// An Excel binary workbook (`.xlsb`); one sheet is read.
    Xlsb,
    /// An Excel 97-2003 workbook (`.xls`); one sheet is read.
    Xls,
    /// An OpenDocument spreadsheet (`.ods`, LibreOffice); one sheet is read.
    Ods,
    /// An in-memory polars frame or arrow record batches handed over by an embedding program.
    Memory,
}

impl FileFormat {
    /// Name for messages and `inspect`.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::CsvGzip => "csv (gzip)",
            FileFormat::Parquet => "parquet",
            FileFormat::Ipc => "arrow ipc",
            FileFormat::Xlsx => "excel workbook (xlsx)",
            FileFormat::Xlsb => "excel binary workbook (xlsb)",
            FileFormat::Xls => "excel 97-2003 workbook (xls)",
            FileFormat::Ods => "opendocument spreadsheet (ods)",
            FileFormat::Memory => "in-memory frame",
        }
    }
}

/// Text encoding of CSV input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TextEncoding {
    /// UTF-8 (with or without a byte-order mark).
    Utf8,
    /// Windows-1252, the superset of ISO-8859-1 (Latin-1) that Excel writes on Western Windows.
    Windows1252,
    /// UTF-16, little-endian: Excel's "Unicode Text" (tab-separated, with a byte-order mark).
    #[serde(rename = "utf-16le")]
    Utf16Le,
    /// UTF-16, big-endian.
    #[serde(rename = "utf-16be")]
    Utf16Be,
}

impl TextEncoding {
    /// Parses `utf-8`, `windows-1252`, `cp1252`, `latin1`, `iso-8859-1`, `utf-16` (little-endian
    /// unless a byte-order mark says otherwise, as Windows writes it), `utf-16le`, `utf-16be`.
    ///
    /// A UTF-16 byte-order mark at the start of a file always wins over the setting: those two
    /// bytes never begin a UTF-8 or Windows-1252 header, and reading them as such garbles it.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for other names.
    pub fn from_setting(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" => Ok(TextEncoding::Utf8),
            "windows-1252" | "cp1252" | "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1" => {
                Ok(TextEncoding::Windows1252)
            }
            "utf-16" | "utf16" | "utf-16le" | "utf16le" | "ucs-2" | "unicode" => {
                Ok(TextEncoding::Utf16Le)
            }
            "utf-16be" | "utf16be" => Ok(TextEncoding::Utf16Be),
            _ => Err(Error::InvalidSetting {
                setting: "encoding".into(),
                message: format!(
                    "{s:?}: expected utf-8, utf-16 (utf-16le, utf-16be) or windows-1252 (latin1)"
                ),
            }),
        }
    }

    /// Name for messages.
    pub fn name(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Windows1252 => "windows-1252",
            TextEncoding::Utf16Le => "utf-16le",
            TextEncoding::Utf16Be => "utf-16be",
        }
    }

    fn codec(self) -> &'static encoding_rs::Encoding {
        match self {
            TextEncoding::Utf8 => encoding_rs::UTF_8,
            TextEncoding::Windows1252 => encoding_rs::WINDOWS_1252,
            TextEncoding::Utf16Le => encoding_rs::UTF_16LE,
            TextEncoding::Utf16Be => encoding_rs::UTF_16BE,
        }
    }
}

/// What reading the bytes of a CSV file found.
enum TextCheck {
    Utf8,
    /// Not UTF-8; the first bad byte is on `line`. `windows_1252` says whether the bytes look
    /// unmistakably like Windows-1252 text (see [`check_text`]).
    NotUtf8 {
        line: u64,
        windows_1252: bool,
        /// The bytes include NUL: binary data (or UTF-16 without a byte-order mark), not text.
        nul: bool,
    },
}

/// Reads the file once: is it UTF-8, and if not, is it clearly Windows-1252?
///
/// "Clearly" means: no NUL byte (UTF-16 and binary files have them), none of the five bytes
/// Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D), and at least 80 % of the
/// non-ASCII bytes are accented letters (0xC0–0xFF) or the symbols Western exports use (€ £ ° §
/// non-breaking space, curly quotes, dashes). Other single-byte encodings (Mac Roman, DOS code
/// pages) fail that test often enough that guessing would silently garble names.
fn check_text(path: &Path) -> std::io::Result<TextCheck> {
    if all_ascii(path)? {
        return Ok(TextCheck::Utf8);
    }
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut carry: Vec<u8> = Vec::new();
    // Bytes before `carry`, and where the first byte that is not UTF-8 sits.
    let mut consumed = 0u64;
    let mut first_bad: Option<u64> = None;
    let (mut high, mut letterlike, mut impossible, mut nul) = (0u64, 0u64, false, false);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or(&[]);
        // Exports are mostly ASCII: `is_ascii` checks a word at a time, the byte loop is only
        // for chunks with accented letters or symbols.
        let ascii = chunk.is_ascii();
        for &b in chunk.iter().take(if ascii { 0 } else { chunk.len() }) {
            if b >= 0x80 {
                high += 1;
                if b >= 0xC0 || matches!(b, 0x80 | 0x91..=0x97 | 0xA0 | 0xA3 | 0xA7 | 0xB0 | 0xB4) {
                    letterlike += 1;
                }
                if matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D) {
                    impossible = true;
                }
            } else if b == 0 {
                impossible = true;
                nul = true;
            }
        }
        if first_bad.is_none() && carry.is_empty() && ascii {
            // ASCII is UTF-8: no copy, no validation.
            consumed += n as u64;
        } else if first_bad.is_none() {
            carry.extend_from_slice(chunk);
            match std::str::from_utf8(&carry) {
                Ok(_) => {
                    consumed += carry.len() as u64;
                    carry.clear();
                }
                // An incomplete character at the end: keep it for the next chunk.
                Err(e) if e.error_len().is_none() => {
                    consumed += e.valid_up_to() as u64;
                    carry.drain(..e.valid_up_to());
                }
                Err(e) => {
                    first_bad = Some(consumed + e.valid_up_to() as u64);
                    carry.clear();
                }
            }
        }
    }
    if first_bad.is_none() && !carry.is_empty() {
        // The file ends inside a multi-byte character.
        first_bad = Some(consumed);
    }
    Ok(match first_bad {
        None => TextCheck::Utf8,
        Some(offset) => TextCheck::NotUtf8 {
            line: line_at(path, offset)?,
            windows_1252: !impossible && high > 0 && letterlike * 5 >= high * 4,
            nul,
        },
    })
}

/// Whether every byte of the file is ASCII (UTF-8, and what [`check_text`] finds of such a file):
/// most exports are, and blocks read on every core answer it in about half the time of the
/// serial reading that the other cases need (~70 ms of a 500 MB export on one core). `false`
/// (found at the first block that is not ASCII) sends the caller to that reading.
#[cfg(unix)]
fn all_ascii(path: &Path) -> std::io::Result<bool> {
    use rayon::prelude::*;
    use std::os::unix::fs::FileExt;
    const BLOCK: u64 = 1 << 20;
    let file = File::open(path)?;
    let blocks = file.metadata()?.len().div_ceil(BLOCK);
    (0..blocks)
        .into_par_iter()
        .map_init(
            || vec![0u8; BLOCK as usize],
            |buf, b| -> std::io::Result<bool> {
                let mut filled = 0;
                // A short read is not the end of the block: read on to it (or to the file's end).
                while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
                    let n = file.read_at(rest, b * BLOCK + filled as u64)?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                Ok(buf.get(..filled).is_some_and(<[u8]>::is_ascii))
            },
        )
        .find_any(|ascii| !matches!(ascii, Ok(true)))
        .unwrap_or(Ok(true))
}

#[cfg(not(unix))]
fn all_ascii(_path: &Path) -> std::io::Result<bool> {
    Ok(false)
}

/// The 1-based line holding byte `offset` of the file. Counted only when a message needs it:
/// counting the lines of every file while checking its text was a serial pass over all of it.
fn line_at(path: &Path, offset: u64) -> std::io::Result<u64> {
    let mut reader = std::io::Read::take(File::open(path)?, offset);
    let mut buf = vec![0u8; 1 << 20];
    let mut newlines = 0u64;
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf)?;
        if n == 0 {
            return Ok(newlines + 1);
        }
        newlines += buf
            .get(..n)
            .unwrap_or(&[])
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64;
    }
}

/// The UTF-16 byte order a byte-order mark at the start of `head` announces.
fn utf16_bom(head: &[u8]) -> Option<TextEncoding> {
    match head {
        [0xFF, 0xFE, ..] => Some(TextEncoding::Utf16Le),
        [0xFE, 0xFF, ..] => Some(TextEncoding::Utf16Be),
        _ => None,
    }
}

/// The byte order of UTF-16 text without a byte-order mark, when `head` clearly is some: mostly
/// ASCII characters, whose other byte is NUL. Only used to give the right advice.
fn utf16_without_bom(head: &[u8]) -> Option<TextEncoding> {
    let pairs = head.len() / 2;
    if pairs < 4 {
        return None;
    }
    let (mut nul_odd, mut nul_even) = (0usize, 0usize);
    for pair in head.chunks_exact(2) {
        if let [a, b] = pair {
            nul_even += usize::from(*a == 0 && *b != 0);
            nul_odd += usize::from(*b == 0 && *a != 0);
        }
    }
    if nul_odd * 10 >= pairs * 9 {
        Some(TextEncoding::Utf16Le)
    } else if nul_even * 10 >= pairs * 9 {
        Some(TextEncoding::Utf16Be)
    } else {
        None
    }
}

/// Makes sure the CSV text at `path` is UTF-8: returns the path to scan (a transcoded temporary
/// copy when the input is Windows-1252 or UTF-16) and the encoding it was read in.
fn ensure_utf8(
    shown: &Path,
    path: PathBuf,
    temp: Option<tempfile::TempPath>,
    encoding: Option<TextEncoding>,
) -> Result<(PathBuf, Option<tempfile::TempPath>, Option<TextEncoding>)> {
    let mut head = [0u8; 512];
    let n = File::open(&path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .map_err(|e| Error::io(shown, e))?;
    let head = head.get(..n).unwrap_or(&[]);
    // Excel's "Unicode Text" is UTF-16LE with a byte-order mark; the mark decides, whatever the
    // setting (see `TextEncoding::from_setting`).
    let target = match (utf16_bom(head), encoding) {
        (Some(found), _) => found,
        (None, Some(e @ (TextEncoding::Utf16Le | TextEncoding::Utf16Be))) => e,
        (None, _) => {
            let check = check_text(&path).map_err(|e| Error::io(shown, e))?;
            match (check, encoding) {
                (TextCheck::Utf8, Some(TextEncoding::Windows1252)) => TextEncoding::Windows1252,
                (TextCheck::Utf8, _) => match utf16_without_bom(head) {
                    // ASCII text in UTF-16 is valid UTF-8 full of NULs: it would "read" as
                    // column names with NULs between the letters.
                    Some(e) if encoding.is_none() => {
                        return Err(Error::Format {
                            path: shown.to_path_buf(),
                            message: format!(
                                "looks like {} text without a byte-order mark; name the encoding with --encoding {}",
                                e.name().to_uppercase(),
                                e.name()
                            ),
                        });
                    }
                    _ => return Ok((path, temp, Some(TextEncoding::Utf8))),
                },
                (TextCheck::NotUtf8 { .. }, Some(TextEncoding::Windows1252)) => {
                    TextEncoding::Windows1252
                }
                (TextCheck::NotUtf8 { nul: true, .. }, _) => {
                    let message = match utf16_without_bom(head) {
                        Some(e) => format!(
                            "looks like {} text without a byte-order mark; name the encoding with --encoding {}",
                            e.name().to_uppercase(),
                            e.name()
                        ),
                        None => "binary data (it has NUL bytes), not CSV text; export the table as CSV, Excel (.xlsx) or Parquet".to_string(),
                    };
                    return Err(Error::Format {
                        path: shown.to_path_buf(),
                        message,
                    });
                }
                (TextCheck::NotUtf8 { line, .. }, Some(_)) => {
                    return Err(Error::Format {
                        path: shown.to_path_buf(),
                        message: format!(
                            "line {line}: not UTF-8 text, but --encoding utf-8 was given; try --encoding windows-1252"
                        ),
                    });
                }
                (
                    TextCheck::NotUtf8 {
                        windows_1252: true, ..
                    },
                    None,
                ) => TextEncoding::Windows1252,
                (TextCheck::NotUtf8 { line, .. }, None) => {
                    return Err(Error::Format {
                        path: shown.to_path_buf(),
                        message: format!(
                            "line {line}: not UTF-8 text, and not clearly Windows-1252 either; name the encoding with --encoding windows-1252 (Excel on Western Windows, Latin-1) or re-save the file as UTF-8"
                        ),
                    });
                }
            }
        }
    };
    let out = transcode(shown, &path, target)?;
    Ok((out.to_path_buf(), Some(out), Some(target)))
}

/// Writes the text at `path`, in `encoding`, to a temporary UTF-8 file, a chunk at a time (a
/// byte-order mark of that encoding is dropped; malformed sequences become U+FFFD).
fn transcode(shown: &Path, path: &Path, encoding: TextEncoding) -> Result<tempfile::TempPath> {
    let io = |e| Error::io(shown, e);
    let mut input = File::open(path).map_err(io)?;
    let (mut out, _tracked) = crate::temp_files::named_temp().map_err(io)?;
    let mut decoder = encoding.codec().new_decoder_with_bom_removal();
    let mut buf = vec![0u8; 1 << 20];
    let mut text = String::new();
    {
        let mut writer = std::io::BufWriter::new(out.as_file_mut());
        loop {
            let n = read_up_to(&mut input, &mut buf).map_err(io)?;
            let last = n < buf.len();
            let mut src = buf.get(..n).unwrap_or(&[]);
            loop {
                text.clear();
                text.reserve(
                    decoder
                        .max_utf8_buffer_length(src.len())
                        .unwrap_or(src.len().saturating_mul(3))
                        .saturating_add(16),
                );
                let (result, read, _) = decoder.decode_to_string(src, &mut text, last);
                writer.write_all(text.as_bytes()).map_err(io)?;
                src = src.get(read..).unwrap_or(&[]);
                if result == encoding_rs::CoderResult::InputEmpty {
                    break;
                }
            }
            if last {
                break;
            }
        }
        writer.flush().map_err(io)?;
    }
    Ok(out.into_temp_path())
}

/// One input as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputPath {
    /// A file on disk.
    File(PathBuf),
    /// Standard input (`-`), read as CSV.
    Stdin,
}

impl InputPath {
    /// How the input is named in messages.
    pub fn display(&self) -> String {
        match self {
            InputPath::File(p) => p.display().to_string(),
            InputPath::Stdin => "<stdin>".into(),
        }
    }
}

/// Expands user arguments (paths, globs such as `exports/orders-*.csv`, or `-`) into inputs.
///
/// Glob matches are sorted so that runs are deterministic.
///
/// # Errors
/// [`Error::NoMatch`] for a glob matching nothing, [`Error::Io`] for a missing path,
/// [`Error::Format`] for a directory.
pub fn expand_inputs<S: AsRef<str>>(patterns: &[S]) -> Result<Vec<InputPath>> {
    let mut out = Vec::new();
    for pattern in patterns {
        let pattern = pattern.as_ref();
        if pattern == "-" {
            out.push(InputPath::Stdin);
            continue;
        }
        if pattern.contains(['*', '?', '[']) && !Path::new(pattern).exists() {
            let paths = glob::glob(pattern).map_err(|e| Error::InvalidSetting {
                setting: "input pattern".into(),
                message: format!("{pattern:?}: {e}"),
            })?;
            let mut matched: Vec<PathBuf> = paths
                .filter_map(|p| p.ok())
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(Error::NoMatch {
                    pattern: pattern.into(),
                });
            }
            matched.sort();
            out.extend(matched.into_iter().map(InputPath::File));
            continue;
        }
        let path = PathBuf::from(pattern);
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_dir() {
            return Err(Error::Format {
                path,
                message: "is a directory, expected a file".into(),
            });
        }
        out.push(InputPath::File(path));
    }
    Ok(out)
}

/// An opened input: a lazy scan plus what was learned while sniffing it.
pub(crate) struct OpenedFile {
    /// The name used in messages (the user's path, or `<stdin>`).
    pub display: String,
    /// The original path on disk, if any (to refuse writing over it).
    pub source_path: Option<PathBuf>,
    /// The plain CSV file actually scanned (a temporary copy for stdin and gzip), for line numbers.
    pub csv_path: Option<PathBuf>,
    /// The Parquet file actually scanned (a temporary copy for stdin), to read a text column's
    /// dictionary keys apart from the scan.
    pub parquet_path: Option<PathBuf>,
    pub format: FileFormat,
    /// The CSV delimiter found.
    pub delimiter: Option<u8>,
    /// Column names as in the file (BOM removed), without `__row`.
    pub columns: Vec<String>,
    /// A CSV file's header names exactly as polars reads them (a BOM included), for re-scans.
    pub raw_columns: Vec<String>,
    /// The scan, with `__row`.
    pub frame: LazyFrame,
    /// Text encoding the CSV was read in (`None` for typed formats and workbooks).
    pub encoding: Option<TextEncoding>,
    /// The sheet read, for a workbook.
    pub sheet: Option<String>,
    /// Typed columns no role can use, with their type (see [`normalize_typed`]).
    pub unreadable: Vec<(String, String)>,
    /// Keeps a temporary decompressed copy alive as long as the scan.
    _temp: Option<tempfile::TempPath>,
    /// Registers that copy for removal on interrupt while it exists.
    _tracked: Option<crate::temp_files::Tracked>,
}

impl std::fmt::Debug for OpenedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedFile")
            .field("display", &self.display)
            .field("format", &self.format)
            .finish()
    }
}

const SNIFF_BYTES: usize = 64 * 1024;

/// Opens one input lazily, CSV text assumed UTF-8 or clearly Windows-1252.
pub(crate) fn open(input: &InputPath) -> Result<OpenedFile> {
    open_with(input, None, None)
}

/// Opens one input lazily; CSV text in `encoding`, or detected when `None`; a workbook's sheet
/// `sheet`, or its first worksheet when `None` (ignored for other formats).
pub(crate) fn open_with(
    input: &InputPath,
    encoding: Option<TextEncoding>,
    sheet: Option<&str>,
) -> Result<OpenedFile> {
    match input {
        InputPath::Stdin => {
            let (mut temp, _tracked) =
                crate::temp_files::named_temp().map_err(|e| Error::io("<stdin>", e))?;
            std::io::copy(&mut std::io::stdin().lock(), temp.as_file_mut())
                .map_err(|e| Error::io("<stdin>", e))?;
            let temp = temp.into_temp_path();
            let path = temp.to_path_buf();
            open_path("<stdin>".into(), None, path, Some(temp), encoding, sheet)
        }
        InputPath::File(path) => open_path(
            path.display().to_string(),
            Some(path.clone()),
            path.clone(),
            None,
            encoding,
            sheet,
        ),
    }
}

/// What the first bytes of a file say it is.
enum Magic {
    Parquet,
    Ipc,
    Gzip,
    /// A zip archive: a workbook (xlsx, xlsb, ods) or something else.
    Zip,
    /// An OLE compound file: an Excel 97-2003 workbook, or another old Office document.
    Ole,
    /// A binary format custmetrics does not read: what it is, and what to do.
    Other(&'static str, &'static str),
    /// Anything else is taken for delimited text.
    Text,
}

fn sniff_magic(head: &[u8]) -> Magic {
    const COMPRESSED: &str = "decompress it first (gzip is read directly)";
    const EXPORT: &str = "export the table as CSV, Excel (.xlsx) or Parquet";
    let table: [(&[u8], Magic); 12] = [
        (b"PAR1", Magic::Parquet),
        (b"ARROW1", Magic::Ipc),
        (&[0x1f, 0x8b], Magic::Gzip),
        (b"PK\x03\x04", Magic::Zip),
        (
            &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1],
            Magic::Ole,
        ),
        (b"PK\x05\x06", Magic::Other("an empty zip archive", EXPORT)),
        (b"%PDF", Magic::Other("a PDF document", EXPORT)),
        (b"BZh", Magic::Other("a bzip2-compressed file", COMPRESSED)),
        (
            b"\xFD7zXZ\x00",
            Magic::Other("an xz-compressed file", COMPRESSED),
        ),
        (
            &[0x28, 0xB5, 0x2F, 0xFD],
            Magic::Other("a zstd-compressed file", COMPRESSED),
        ),
        (
            b"7z\xBC\xAF\x27\x1C",
            Magic::Other("a 7-zip archive", "extract it first"),
        ),
        (
            b"SQLite format 3\x00",
            Magic::Other("an SQLite database", EXPORT),
        ),
    ];
    table
        .into_iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map_or(Magic::Text, |(_, kind)| kind)
}

/// Opens the file at `path` (the input itself, or stdin's spooled copy in `temp`) by what its
/// bytes are, whatever its name: a renamed workbook is still read as one.
fn open_path(
    display: String,
    source_path: Option<PathBuf>,
    path: PathBuf,
    temp: Option<tempfile::TempPath>,
    encoding: Option<TextEncoding>,
    sheet: Option<&str>,
) -> Result<OpenedFile> {
    let shown = PathBuf::from(&display);
    let mut head = [0u8; 16];
    let n = File::open(&path)
        .and_then(|mut f| read_up_to(&mut f, &mut head))
        .map_err(|e| Error::io(&shown, e))?;
    match sniff_magic(head.get(..n).unwrap_or(&[])) {
        Magic::Parquet => {
            let lf = LazyFrame::scan_parquet(
                PlRefPath::try_from_path(&path)?,
                ScanArgsParquet::default(),
            )
            .map_err(|e| format_error(&shown, e))?;
            let opened = open_typed(display, source_path, FileFormat::Parquet, lf, temp, vec![]);
            opened.map(|o| OpenedFile {
                parquet_path: Some(path),
                ..o
            })
        }
        Magic::Ipc => {
            let lf = LazyFrame::scan_ipc(
                PlRefPath::try_from_path(&path)?,
                IpcScanOptions::default(),
                UnifiedScanArgs::default(),
            )
            .map_err(|e| format_error(&shown, e))?;
            let wide = ipc_decimal256(&path);
            open_typed(display, source_path, FileFormat::Ipc, lf, temp, wide)
        }
        Magic::Gzip => {
            let temp = decompress_gzip(&shown, &path)?;
            let (csv, temp, enc) = ensure_utf8(&shown, temp.to_path_buf(), Some(temp), encoding)?;
            open_csv(display, source_path, csv, FileFormat::CsvGzip, temp, enc)
        }
        Magic::Zip => match super::workbook::zip_kind(&shown, &path)? {
            super::workbook::ZipKind::Workbook(format) => {
                open_sheet(display, source_path, &path, format, sheet)
            }
            super::workbook::ZipKind::Other(what) => Err(Error::Format {
                path: shown,
                message: format!("{what}, not a CSV; unzip it first"),
            }),
        },
        Magic::Ole => open_sheet(display, source_path, &path, FileFormat::Xls, sheet),
        Magic::Other(what, advice) => Err(Error::Format {
            path: shown,
            message: format!("{what}, not a CSV; {advice}"),
        }),
        Magic::Text => {
            let (csv, temp, enc) = ensure_utf8(&shown, path, temp, encoding)?;
            open_csv(display, source_path, csv, FileFormat::Csv, temp, enc)
        }
    }
}

/// Reads one sheet of a workbook through a temporary UTF-8 CSV (see [`super::workbook`]).
fn open_sheet(
    display: String,
    source_path: Option<PathBuf>,
    path: &Path,
    format: FileFormat,
    sheet: Option<&str>,
) -> Result<OpenedFile> {
    let shown = PathBuf::from(&display);
    let (csv, name) = super::workbook::sheet_to_csv(&shown, path, format, sheet)?;
    let mut opened = open_csv(
        display,
        source_path,
        csv.to_path_buf(),
        format,
        Some(csv),
        None,
    )?;
    opened.sheet = Some(name);
    Ok(opened)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match r.read(rest)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn format_error(path: &Path, e: PolarsError) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn decompress_gzip(shown: &Path, path: &Path) -> Result<tempfile::TempPath> {
    let file = File::open(path).map_err(|e| Error::io(shown, e))?;
    let mut decoder = flate2::read::MultiGzDecoder::new(BufReader::new(file));
    let (mut temp, _tracked) = crate::temp_files::named_temp().map_err(|e| Error::io(shown, e))?;
    std::io::copy(&mut decoder, temp.as_file_mut()).map_err(|e| Error::Format {
        path: shown.to_path_buf(),
        message: format!("cannot decompress gzip: {e} (is the file truncated?)"),
    })?;
    temp.as_file_mut()
        .flush()
        .map_err(|e| Error::io(shown, e))?;
    Ok(temp.into_temp_path())
}

/// Wraps an in-memory frame like a typed file: the same column detection and parsing apply.
pub(crate) fn open_frame(name: &str, lf: LazyFrame) -> Result<OpenedFile> {
    open_typed(name.to_string(), None, FileFormat::Memory, lf, None, vec![])
}

/// `also_unreadable`: columns known unreadable from the file's own schema (see
/// [`ipc_decimal256`]).
fn open_typed(
    display: String,
    source_path: Option<PathBuf>,
    format: FileFormat,
    lf: LazyFrame,
    temp: Option<tempfile::TempPath>,
    also_unreadable: Vec<(String, String)>,
) -> Result<OpenedFile> {
    let shown = PathBuf::from(&display);
    let mut lf = lf;
    let schema = lf.collect_schema().map_err(|e| format_error(&shown, e))?;
    let columns: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
    let (casts, unreadable) = normalize_typed(&schema, also_unreadable);
    if !casts.is_empty() {
        lf = lf.with_columns(casts);
    }
    lf = drop_columns(lf, &columns, &unreadable);
    Ok(OpenedFile {
        display,
        source_path,
        csv_path: None,
        parquet_path: None,
        format,
        delimiter: None,
        raw_columns: vec![],
        columns,
        frame: lf.with_row_index(ROW, None),
        encoding: None,
        sheet: None,
        unreadable,
        _tracked: temp.as_ref().map(|t| crate::temp_files::track(t)),
        _temp: temp,
    })
}

/// The scan without the `unreadable` columns: no role uses them (see
/// [`OpenedFile::check_readable`]), and polars may fail decoding them.
fn drop_columns(lf: LazyFrame, columns: &[String], unreadable: &[(String, String)]) -> LazyFrame {
    if unreadable.is_empty() {
        return lf;
    }
    let keep: Vec<Expr> = columns
        .iter()
        .filter(|c| !unreadable.iter().any(|(u, _)| u == *c))
        .map(|c| col(c.as_str()))
        .collect();
    lf.select(keep)
}

/// The decimal256 columns of an Arrow IPC file. polars 0.55 types them as decimals, like
/// decimal128, but panics decoding them ("operator does not support primitive Int256"), so
/// they are set apart by their Arrow type, which polars' schema no longer shows.
fn ipc_decimal256(path: &Path) -> Vec<(String, String)> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let Ok(schema) = polars::io::ipc::IpcReader::new(file).schema() else {
        return Vec::new();
    };
    schema
        .iter_values()
        .filter_map(|f| match f.dtype() {
            ArrowDataType::Decimal256(p, s) => {
                Some((f.name.to_string(), format!("decimal256({p}, {s})")))
            }
            _ => None,
        })
        .collect()
}

/// The casts that turn the column types warehouses and pyarrow write into the few that parsing
/// knows (text, integers, floats, dates, datetimes without a zone), and the columns left that no
/// role can use, with their type. The casts are lazy: a column the job does not select is never
/// read, so an unused column of any type costs nothing and cannot fail.
///
/// - decimals: scale 0 to integers (ids keep their text, `12345` not `12345.0`; wider than 18
///   digits to text), other scales to Float64, as exact as a CSV amount is;
/// - float16 to Float32; dictionary (categorical, enum) strings to text;
/// - a timestamp with a time zone to its wall-clock time in that zone, so that its day is the
///   local day, as for CSV times with a UTC offset (a shop's day is its local day);
/// - decimals wider than the 38 digits polars holds, durations, times of day, binary, lists
///   and structs are left as they are and listed: a role given one of them is an error.
pub(crate) fn normalize_typed(
    schema: &Schema,
    known_unreadable: Vec<(String, String)>,
) -> (Vec<Expr>, Vec<(String, String)>) {
    let mut casts = Vec::new();
    let mut unreadable = known_unreadable;
    for (name, dtype) in schema.iter() {
        if unreadable.iter().any(|(u, _)| u == name.as_str()) {
            continue;
        }
        let c = || col(name.clone());
        match dtype {
            DataType::Decimal(p, _) if *p > 38 => {
                unreadable.push((name.to_string(), format!("decimal({p})")));
            }
            DataType::Decimal(p, 0) if *p <= 18 => casts.push(c().cast(DataType::Int64)),
            DataType::Decimal(_, 0) => casts.push(c().cast(DataType::String)),
            DataType::Decimal(_, _) => casts.push(c().cast(DataType::Float64)),
            DataType::Float16 => casts.push(c().cast(DataType::Float32)),
            DataType::Categorical(_, _) | DataType::Enum(_, _) => {
                casts.push(c().cast(DataType::String));
            }
            DataType::Datetime(_, Some(_)) => casts.push(c().dt().replace_time_zone(
                None,
                lit("raise"),
                NonExistent::Raise,
            )),
            DataType::String
            | DataType::Boolean
            | DataType::Null
            | DataType::Date
            | DataType::Datetime(_, None) => {}
            d if d.is_primitive_numeric() => {}
            d => unreadable.push((name.to_string(), d.to_string())),
        }
    }
    (casts, unreadable)
}

fn open_csv(
    display: String,
    source_path: Option<PathBuf>,
    csv_path: PathBuf,
    format: FileFormat,
    temp: Option<tempfile::TempPath>,
    encoding: Option<TextEncoding>,
) -> Result<OpenedFile> {
    let shown = PathBuf::from(&display);
    let mut sample = vec![0u8; SNIFF_BYTES];
    let n = File::open(&csv_path)
        .and_then(|mut f| read_up_to(&mut f, &mut sample))
        .map_err(|e| Error::io(&shown, e))?;
    sample.truncate(n);
    // polars' CSV reader takes a file starting with these bytes for zlib or zstd data and, built
    // without decompression, panics (found by fuzzing). Text that starts so ("x^") is refused.
    if let [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] | [0x28, 0xb5, 0x2f, 0xfd, ..] = sample.as_slice()
    {
        return Err(Error::Format {
            path: shown,
            message: "starts with the bytes of zlib- or zstd-compressed data (for text: \"x^\"), which the CSV reader cannot read; decompress it first (gzip is read directly), or start the text with its header line".into(),
        });
    }
    let has_bom = sample.starts_with(&[0xef, 0xbb, 0xbf]);
    let text_bytes = if has_bom {
        sample.get(3..).unwrap_or(&[])
    } else {
        &sample[..]
    };
    if text_bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::Format {
            path: shown,
            message: "file is empty (expected a header line)".into(),
        });
    }
    let text = match std::str::from_utf8(text_bytes) {
        Ok(t) => t,
        // The sample may end in the middle of a multi-byte character.
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(text_bytes.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or("")
        }
        Err(e) => {
            let line = text_bytes
                .get(..e.valid_up_to())
                .unwrap_or(&[])
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1;
            return Err(Error::Format {
                path: shown,
                message: format!(
                    "line {line}: not UTF-8 text (an Excel export in Windows-1252?); re-save the file as UTF-8"
                ),
            });
        }
    };
    let delimiter = sniff_delimiter(text);
    // Header problems are checked on the raw header: polars renames duplicates silently.
    let mut header_reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    if let Ok(headers) = header_reader.headers() {
        let names: Vec<String> = headers
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect();
        for (i, c) in names.iter().enumerate() {
            if names.iter().take(i).any(|p| p == c) {
                return Err(Error::Format {
                    path: shown,
                    message: format!(
                        "line 1: header {c:?} appears twice; rename one of the columns"
                    ),
                });
            }
        }
    }
    let mut lf = csv_scan(&csv_path, delimiter, None).map_err(|e| format_error(&shown, e))?;
    let schema = lf.collect_schema().map_err(|e| format_error(&shown, e))?;
    let raw: Vec<String> = schema
        .iter_names()
        .map(|n| n.to_string())
        .filter(|n| n != ROW)
        .collect();
    let mut columns = raw.clone();
    if let Some(first) = columns.first_mut()
        && let Some(stripped) = first.strip_prefix('\u{feff}')
    {
        *first = stripped.to_string();
    }
    for (i, c) in columns.iter().enumerate() {
        if c.trim().is_empty() {
            return Err(Error::Format {
                path: shown,
                message: format!("line 1: column {} has an empty header name", i + 1),
            });
        }
        if columns.iter().take(i).any(|p| p == c) {
            return Err(Error::Format {
                path: shown,
                message: format!("line 1: header {c:?} appears twice"),
            });
        }
    }
    if raw != columns {
        lf = lf.rename(raw.clone(), columns.clone(), true);
    }
    Ok(OpenedFile {
        display,
        source_path,
        csv_path: Some(csv_path),
        parquet_path: None,
        format,
        delimiter: Some(delimiter),
        raw_columns: raw,
        columns,
        frame: lf,
        encoding,
        sheet: None,
        unreadable: vec![],
        _tracked: temp.as_ref().map(|t| crate::temp_files::track(t)),
        _temp: temp,
    })
}

/// The CSV scan every file gets: every column text (`types` overrides some, by header name as
/// polars reads it), missing values null, and the `__row` index.
fn csv_scan(path: &Path, delimiter: u8, types: Option<SchemaRef>) -> PolarsResult<LazyFrame> {
    LazyCsvReader::new(PlRefPath::try_from_path(path)?)
        .with_has_header(true)
        .with_separator(delimiter)
        .with_infer_schema_length(Some(0))
        .with_dtype_overwrite(types)
        .with_row_index(Some(RowIndex {
            name: ROW.into(),
            offset: 0,
        }))
        .with_missing_is_null(true)
        .with_raise_if_empty(true)
        .finish()
}

impl OpenedFile {
    /// Fails when a role's column has a type no role can use; such columns are not
    /// dimensions either (a typed file's other columns are never read, whatever their type).
    ///
    /// # Errors
    /// [`Error::Format`] naming the file, the column and its type.
    pub(crate) fn check_readable(&self, resolved: &mut super::ResolvedColumns) -> Result<()> {
        if self.unreadable.is_empty() {
            return Ok(());
        }
        let unreadable = |c: &str| self.unreadable.iter().find(|(u, _)| u == c);
        if let Some((column, dtype)) = resolved.roles.values().find_map(|c| unreadable(c)) {
            return Err(Error::Format {
                path: PathBuf::from(&self.display),
                message: format!(
                    "column {column:?} has type {dtype}, which custmetrics cannot read; cast it to text, a number, a date or a decimal of at most 38 digits in the warehouse, or map another column"
                ),
            });
        }
        resolved.dimensions.retain(|d| unreadable(d).is_none());
        Ok(())
    }

    /// A CSV file's scan with some columns (named as in [`OpenedFile::columns`]) parsed by polars
    /// into `types` while reading, instead of kept as text; `None` for other inputs. Strict: a
    /// value polars cannot parse fails the whole scan, and the caller falls back to text.
    pub(crate) fn typed_csv_scan(&self, types: &[(String, DataType)]) -> Option<LazyFrame> {
        let (path, delimiter) = (self.csv_path.as_ref()?, self.delimiter?);
        let lf = csv_scan(path, delimiter, Some(Arc::new(self.raw_types(types)))).ok()?;
        Some(if self.raw_columns != self.columns {
            lf.rename(self.raw_columns.clone(), self.columns.clone(), true)
        } else {
            lf
        })
    }
}

impl OpenedFile {
    /// [`OpenedFile::typed_csv_scan`] read whole by polars' CSV reader, only the `wanted`
    /// columns (named as in [`OpenedFile::columns`]) and the row index; `None` for other inputs
    /// or when polars fails (the caller then scans). The streaming scan reads 512 KiB at a
    /// time: a 10M-row export came in ~1,000 chunks of ~10,000 rows allocated by polars'
    /// streaming threads, and their memory, freed by the threads that code the columns, was
    /// not reused (~500 MB more at a CSV `summarize`'s peak than from Parquet; BENCHMARKS.md).
    /// This reader parses pieces of up to 16 MB on polars' thread pool.
    pub(crate) fn typed_csv_read(
        &self,
        types: &[(String, DataType)],
        wanted: &[String],
    ) -> Option<DataFrame> {
        let (path, delimiter) = (self.csv_path.as_ref()?, self.delimiter?);
        let schema = self.raw_types(types);
        let projection: Vec<PlSmallStr> = wanted
            .iter()
            .map(|w| self.raw_column(w).map(|r| r.as_str().into()))
            .collect::<Option<_>>()?;
        let mut frame = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_schema_overwrite(Some(Arc::new(schema)))
            .with_row_index(Some(RowIndex {
                name: ROW.into(),
                offset: 0,
            }))
            .with_raise_if_empty(true)
            // Chunks of a few hundred thousand rows are kept: one chunk would copy the frame.
            .with_rechunk(false)
            .with_columns(Some(projection.into()))
            .map_parse_options(|o| o.with_separator(delimiter).with_missing_is_null(true))
            .try_into_reader_with_file_path(Some(path.clone()))
            .ok()?
            .finish()
            .ok()?;
        for w in wanted {
            let r = self.raw_column(w)?;
            if r != w {
                // A rename onto a name still in use would need a swap: scan instead.
                if frame.get_column_index(w).is_some() {
                    return None;
                }
                frame.rename(r, w.as_str().into()).ok()?;
            }
        }
        Some(frame)
    }

    /// The header name, as written in the file, of the column this crate calls `name`.
    fn raw_column(&self, name: &str) -> Option<&String> {
        let i = self.columns.iter().position(|c| c == name)?;
        self.raw_columns.get(i)
    }

    /// The dtypes to force on a CSV read, keyed by the file's own header names (polars
    /// matches a schema to the header before any rename).
    fn raw_types(&self, types: &[(String, DataType)]) -> Schema {
        types
            .iter()
            .filter_map(|(name, dtype)| {
                Some((self.raw_column(name)?.as_str().into(), dtype.clone()))
            })
            .collect()
    }
}

/// Picks the delimiter among `,` `;` tab `|` that splits the first lines into the same,
/// largest number of fields; quoted fields are skipped. Falls back to `,`.
pub(crate) fn sniff_delimiter(text: &str) -> u8 {
    let lines = logical_lines(text, 20);
    let mut best = (b',', 0usize, false);
    for cand in [b',', b';', b'\t', b'|'] {
        let counts: Vec<usize> = lines.iter().map(|l| count_unquoted(l, cand)).collect();
        let Some(&first) = counts.first() else {
            continue;
        };
        let consistent = counts.iter().all(|&c| c == first);
        let better = match (consistent, best.2) {
            (true, false) => first > 0,
            (true, true) | (false, false) => first > best.1,
            (false, true) => false,
        };
        if better {
            best = (cand, first, consistent);
        }
    }
    best.0
}

/// Splits text into records, keeping quoted newlines inside a record; drops a trailing partial one.
fn logical_lines(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' if !in_quotes => {
                if let Some(line) = text.get(start..i) {
                    let line = line.trim_end_matches('\r');
                    if !line.is_empty() {
                        out.push(line);
                    }
                }
                start = i + 1;
                if out.len() >= max {
                    return out;
                }
            }
            _ => {}
        }
    }
    if out.is_empty()
        && let Some(rest) = text.get(start..)
    {
        out.push(rest.trim_end());
    }
    out
}

fn count_unquoted(line: &str, delim: u8) -> usize {
    let mut in_quotes = false;
    let mut n = 0;
    for b in line.bytes() {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == delim && !in_quotes {
            n += 1;
        }
    }
    n
}

/// Finds the first structural problem of a CSV file that polars refused: a record with a
/// different number of fields than the header, or a quote that is never closed. Only runs on the
/// error path, to turn polars' message into a file and line.
pub(crate) fn diagnose_csv(path: &Path, delimiter: u8) -> Option<String> {
    let file = File::open(path).ok()?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut buf = vec![0u8; 1 << 16];
    let (mut line, mut record_line, mut fields, mut expected) = (1u64, 1u64, 1usize, None::<usize>);
    let (mut in_quotes, mut quote_line, mut empty) = (false, 1u64, true);
    loop {
        let n = reader.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        for &b in buf.get(..n)? {
            match b {
                b'"' => {
                    if !in_quotes {
                        quote_line = line;
                    }
                    in_quotes = !in_quotes;
                    empty = false;
                }
                b'\n' => {
                    if !in_quotes {
                        if !empty {
                            match expected {
                                None => expected = Some(fields),
                                Some(e) if e != fields => {
                                    return Some(format!(
                                        "line {record_line}: {fields} fields where the header has {e}"
                                    ));
                                }
                                _ => {}
                            }
                        }
                        fields = 1;
                        empty = true;
                        record_line = line + 1;
                    }
                    line += 1;
                }
                b'\r' => {}
                b if b == delimiter && !in_quotes => {
                    fields += 1;
                    empty = false;
                }
                _ => empty = false,
            }
        }
    }
    if in_quotes {
        return Some(format!(
            "line {quote_line}: a quote opened here is never closed"
        ));
    }
    match expected {
        Some(e) if !empty && e != fields => Some(format!(
            "line {record_line}: {fields} fields where the header has {e}"
        )),
        _ => None,
    }
}

/// The report footer at the end of a CSV file, if it has one: the number of records after the
/// file's last blank line when every one of them looks like a footer line (a single non-empty
/// field, or a first field starting with "total" / "grand total", as Salesforce and other CRM
/// reports end with `Grand Totals (42 records)`, `Generated By: ...`, copyright lines). Reads
/// only the file's last 64 KiB. Blank lines at the very end are not part of it.
pub(crate) fn footer_rows(path: &Path, delimiter: u8) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let mut lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    if start > 0 && !lines.is_empty() {
        // The first line may be cut.
        lines.remove(0);
    }
    let is_blank = |l: &str| {
        l.chars()
            .all(|c| c.is_whitespace() || c == char::from(delimiter) || c == '"')
    };
    while lines.last().is_some_and(|l| is_blank(l)) {
        lines.pop();
    }
    let last_blank = lines.iter().rposition(|l| is_blank(l))?;
    let footer = lines.get(last_blank + 1..)?;
    // A footer is a few lines; the lines before the blank must be the data.
    if footer.is_empty() || footer.len() > 20 || last_blank == 0 {
        return None;
    }
    let looks_like_footer = |l: &str| {
        let fields: Vec<String> = csv::ReaderBuilder::new()
            .has_headers(false)
            .delimiter(delimiter)
            .from_reader(l.as_bytes())
            .records()
            .next()
            .and_then(|r| r.ok())
            .map(|r| r.iter().map(|f| f.trim().to_string()).collect())
            .unwrap_or_default();
        let filled = fields.iter().filter(|f| !f.is_empty()).count();
        let first = fields
            .iter()
            .find(|f| !f.is_empty())
            .map(|f| f.to_lowercase())
            .unwrap_or_default();
        filled <= 1 || first.starts_with("total") || first.starts_with("grand total")
    };
    footer
        .iter()
        .all(|l| looks_like_footer(l))
        .then_some(footer.len() as u64)
}

/// Maps 0-based data-row indices of a CSV file to 1-based line numbers, counting line breaks
/// outside quoted fields, so that quoted fields spanning lines still give the right line.
/// (The csv crate's record positions were off by one on CRLF files.)
pub(crate) fn csv_lines(path: &Path, _delimiter: u8, rows: &[u64]) -> Vec<Option<u64>> {
    let Some(&max) = rows.iter().max() else {
        return Vec::new();
    };
    let mut starts: Vec<u64> = Vec::new();
    if let Ok(file) = File::open(path) {
        let mut reader = BufReader::with_capacity(1 << 16, file);
        let (mut line, mut in_quotes, mut record_started) = (1u64, false, false);
        let mut record_start_line = 1u64;
        let mut buf = [0u8; 1 << 16];
        let mut header_done = false;
        'outer: loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &b in buf.get(..n).unwrap_or(&[]) {
                if !record_started && b != b'\n' && b != b'\r' {
                    record_started = true;
                    record_start_line = line;
                }
                match b {
                    b'"' => in_quotes = !in_quotes,
                    b'\n' => {
                        if !in_quotes && record_started {
                            if header_done {
                                starts.push(record_start_line);
                                if starts.len() as u64 > max {
                                    break 'outer;
                                }
                            }
                            header_done = true;
                            record_started = false;
                        } else if !in_quotes && header_done {
                            // polars reads an empty line as a row (of nulls; the loader then
                            // skips it as blank), so it takes a row number here too.
                            starts.push(line);
                            if starts.len() as u64 > max {
                                break 'outer;
                            }
                        }
                        line += 1;
                    }
                    _ => {}
                }
            }
        }
        if record_started && header_done {
            starts.push(record_start_line);
        }
    }
    rows.iter()
        .map(|&r| usize::try_from(r).ok().and_then(|r| starts.get(r)).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_csv_read_whole_equals_the_typed_scan() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bom.csv");
        // A byte-order mark before the header (polars drops it, as the crate does).
        std::fs::write(
            &p,
            "\u{feff}customer,order_id,day,amount,note\nc1,o1,2024-01-05,12.5,x\nc2,o2,2024-02-29,,y\n",
        )
        .unwrap();
        let opened = open(&InputPath::File(p)).unwrap();
        assert_eq!(opened.columns[0], "customer");
        let types = [
            ("day".to_string(), DataType::Date),
            ("amount".to_string(), DataType::Float64),
        ];
        let wanted = [
            "customer".to_string(),
            "day".to_string(),
            "amount".to_string(),
        ];
        let read = opened.typed_csv_read(&types, &wanted).unwrap();
        let mut names: Vec<String> = read
            .get_column_names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["__row", "amount", "customer", "day"]);
        let keep = [col(ROW), col("customer"), col("day"), col("amount")];
        let read = read.lazy().select(keep.clone()).collect().unwrap();
        let scanned = opened
            .typed_csv_scan(&types)
            .unwrap()
            .select(keep)
            .collect()
            .unwrap();
        assert!(read.equals_missing(&scanned), "{read}\n{scanned}");
        assert_eq!(read.column("day").unwrap().dtype(), &DataType::Date);
        assert_eq!(read.column("amount").unwrap().null_count(), 1);
        assert_eq!(read.height(), 2);
    }

    #[test]
    fn text_check_finds_utf8_across_chunks_and_clear_windows_1252() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        // A two-byte character straddling the 1 MiB read boundary is still UTF-8.
        let mut bytes = vec![b'a'; (1 << 20) - 1];
        bytes.extend_from_slice("é\nb\n".as_bytes());
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(check_text(&p).unwrap(), TextCheck::Utf8));
        // Latin-1 letters: not UTF-8 on line 3, clearly Windows-1252.
        std::fs::write(&p, b"h\nok\nM\xfcnchen Z\xfcrich \x80 5\n").unwrap();
        assert!(matches!(
            check_text(&p).unwrap(),
            TextCheck::NotUtf8 {
                line: 3,
                windows_1252: true,
                nul: false
            }
        ));
        // A byte Windows-1252 does not define, or a NUL: not clear.
        std::fs::write(&p, b"h\n\x81x\n").unwrap();
        assert!(matches!(
            check_text(&p).unwrap(),
            TextCheck::NotUtf8 {
                line: 2,
                windows_1252: false,
                nul: false
            }
        ));
        // A bad byte after the first 1 MiB read: its line counts the lines of the reads before.
        let mut bytes = b"ab\n".repeat(400_000);
        bytes.extend_from_slice(b"\xc3\xa9\nx\xff\n");
        std::fs::write(&p, &bytes).unwrap();
        assert!(matches!(
            check_text(&p).unwrap(),
            TextCheck::NotUtf8 { line: 400_002, .. }
        ));
        // ASCII in several blocks (the parallel check) is UTF-8; one byte that is not ASCII in
        // the last, short block sends the file to the reading that finds its line.
        let mut bytes = b"ab\n".repeat(1_000_000);
        std::fs::write(&p, &bytes).unwrap();
        assert_eq!(all_ascii(&p).unwrap(), cfg!(unix));
        assert!(matches!(check_text(&p).unwrap(), TextCheck::Utf8));
        bytes.extend_from_slice(b"x\xe9\n");
        std::fs::write(&p, &bytes).unwrap();
        assert!(!all_ascii(&p).unwrap());
        assert!(matches!(
            check_text(&p).unwrap(),
            TextCheck::NotUtf8 {
                line: 1_000_001,
                windows_1252: true,
                ..
            }
        ));
        std::fs::write(&p, b"").unwrap();
        assert_eq!(all_ascii(&p).unwrap(), cfg!(unix));
        // The file ends inside a multi-byte character.
        std::fs::write(&p, b"h\nab\xc3").unwrap();
        assert!(matches!(
            check_text(&p).unwrap(),
            TextCheck::NotUtf8 { line: 2, .. }
        ));
        assert_eq!(
            TextEncoding::from_setting("Latin1").unwrap(),
            TextEncoding::Windows1252
        );
        assert!(TextEncoding::from_setting("ebcdic").is_err());
    }

    #[test]
    fn utf16_is_told_by_its_mark_or_its_nul_bytes() {
        assert_eq!(utf16_bom(b"\xff\xfea\x00"), Some(TextEncoding::Utf16Le));
        assert_eq!(utf16_bom(b"\xfe\xff\x00a"), Some(TextEncoding::Utf16Be));
        assert_eq!(utf16_bom(b"\xef\xbb\xbfa"), None);
        assert_eq!(
            utf16_without_bom(b"i\x00d\x00,\x00d\x00"),
            Some(TextEncoding::Utf16Le)
        );
        assert_eq!(
            utf16_without_bom(b"\x00i\x00d\x00,\x00d"),
            Some(TextEncoding::Utf16Be)
        );
        assert_eq!(utf16_without_bom(b"id,date\n"), None);
    }

    #[test]
    fn magic_bytes_name_binary_formats() {
        assert!(matches!(sniff_magic(b"PK\x03\x04rest"), Magic::Zip));
        assert!(matches!(
            sniff_magic(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]),
            Magic::Ole
        ));
        assert!(matches!(
            sniff_magic(b"BZh91AY"),
            Magic::Other("a bzip2-compressed file", _)
        ));
        assert!(matches!(sniff_magic(b"id,date\n"), Magic::Text));
        assert!(matches!(sniff_magic(b""), Magic::Text));
    }

    #[test]
    fn text_starting_like_zlib_data_is_refused_not_a_polars_panic() {
        // Found by fuzzing: polars' CSV scan panics ("activate 'decompress' feature").
        let dir = tempfile::tempdir().unwrap();
        for head in [
            &b"x\x01<m? ver"[..],
            b"x^2,y\n1,2\n",
            b"\x28\xb5\x2f\xfdabc",
        ] {
            let p = dir.path().join("f.csv");
            std::fs::write(&p, head).unwrap();
            let err = open(&InputPath::File(p)).err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains("decompress it first")),
                "{head:?}: {err:?}"
            );
        }
    }

    #[test]
    fn sniffs_common_delimiters() {
        assert_eq!(sniff_delimiter("a,b,c\n1,2,3\n"), b',');
        assert_eq!(sniff_delimiter("a;b;c\n1,5;2;3\n"), b';');
        assert_eq!(sniff_delimiter("a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff_delimiter("a|b\n1|2\n"), b'|');
        // A comma inside quotes does not count.
        assert_eq!(sniff_delimiter("name;note\n\"x\";\"a, b, c\"\n"), b';');
        // A quoted newline does not break the record.
        assert_eq!(sniff_delimiter("a;b\n\"line\none\";2\n"), b';');
    }

    #[test]
    fn lines_of_records_with_quoted_newlines_and_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "a,b\r\n1,\"two\r\nlines\"\r\n3,4\r\n\r\n5,6").unwrap();
        // The empty line 5 is a row of its own (polars reads it as one).
        assert_eq!(
            csv_lines(&p, b',', &[0, 1, 2, 3]),
            vec![Some(2), Some(4), Some(5), Some(6)]
        );
    }

    #[test]
    fn diagnoses_ragged_rows_and_open_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        std::fs::write(&p, "a,b\n1,2\n3,4,5\n").unwrap();
        assert_eq!(
            diagnose_csv(&p, b','),
            Some("line 3: 3 fields where the header has 2".into())
        );
        std::fs::write(&p, "a,b\n1,\"2\n3,4\n").unwrap();
        assert_eq!(
            diagnose_csv(&p, b','),
            Some("line 2: a quote opened here is never closed".into())
        );
        std::fs::write(&p, "a,b\n1,\"x,\ny\"\n3,4").unwrap();
        assert_eq!(diagnose_csv(&p, b','), None);
    }
}
