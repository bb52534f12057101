//! Cutting a streamed body into numbered lines and the lines into blocks of a chunk's size: pure, so every edge (a
//! line split across network pieces, CRLF, a CSV header, a last line without its newline, a line too long) is
//! tested without a server.

use std::sync::Arc;

/// A line longer than this is not a fact row; refusing it bounds the memory one request can take.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// How the body's lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

/// Lines of the body handed to a parser, each followed by `\n`; `first_line` is the number of the first one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Block {
    pub text: Vec<u8>,
    pub first_line: i64,
    pub last_line: i64,
}

impl Block {
    fn starting_at(line: i64) -> Self {
        Block {
            text: Vec::new(),
            first_line: line,
            last_line: line - 1,
        }
    }

    fn lines(&self) -> i64 {
        self.last_line - self.first_line + 1
    }
}

/// Why a body cannot be framed into lines.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A CSV body whose first line is not a CSV record.
    #[error("the CSV header line is missing")]
    MissingCsvHeader,
    /// The line numbered here is longer than [`MAX_LINE_BYTES`].
    #[error("line {0} is longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong(i64),
}

/// The framing state of one body: fed the pieces as they arrive, it hands out whole blocks.
pub struct Framer {
    format: Format,
    chunk_rows: i64,
    block_max_bytes: usize,
    pending: Vec<u8>,
    block: Block,
    line_no: i64,
    headers: Option<Arc<csv::StringRecord>>,
}

impl Framer {
    /// A block ends after `chunk_rows` lines or once it holds `block_max_bytes`, whichever comes first.
    pub fn new(format: Format, chunk_rows: usize, block_max_bytes: usize) -> Self {
        Framer {
            format,
            chunk_rows: chunk_rows.max(1) as i64,
            block_max_bytes,
            pending: Vec::new(),
            block: Block::starting_at(1),
            line_no: 0,
            headers: None,
        }
    }

    /// Takes the next piece of the body; returns the blocks it completed, in order.
    pub fn push(&mut self, piece: &[u8]) -> Result<Vec<Block>, FramingError> {
        self.pending.extend_from_slice(piece);
        self.frame()
    }

    /// The end of the body: the last line may lack its newline. Returns the blocks that completes.
    pub fn finish(&mut self) -> Result<Vec<Block>, FramingError> {
        if !self.pending.is_empty() && self.pending.last() != Some(&b'\n') {
            self.pending.push(b'\n');
        }
        self.frame()
    }

    /// The CSV header, once read.
    pub fn headers(&self) -> Option<Arc<csv::StringRecord>> {
        self.headers.clone()
    }

    /// The number of the last whole line received.
    pub fn lines_read(&self) -> i64 {
        self.line_no
    }

    /// The lines received since the last full block (what is left when the body ends).
    pub fn into_rest(self) -> Block {
        self.block
    }

    fn frame(&mut self) -> Result<Vec<Block>, FramingError> {
        let mut full = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|b| *b == b'\n') {
            self.line_no += 1;
            let line = &self.pending[start..start + pos];
            start += pos + 1;
            if self.format == Format::Csv && self.headers.is_none() {
                let header = csv_record(line.strip_suffix(b"\r").unwrap_or(line))
                    .ok_or(FramingError::MissingCsvHeader)?;
                self.headers = Some(Arc::new(header));
                self.block = Block::starting_at(self.line_no + 1);
                continue;
            }
            self.block.text.extend_from_slice(line);
            self.block.text.push(b'\n');
            self.block.last_line = self.line_no;
            if self.block.lines() >= self.chunk_rows
                || self.block.text.len() >= self.block_max_bytes
            {
                let next = Block::starting_at(self.line_no + 1);
                full.push(std::mem::replace(&mut self.block, next));
            }
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE_BYTES {
            return Err(FramingError::LineTooLong(self.line_no + 1));
        }
        Ok(full)
    }
}

/// One CSV record from one line, or `None` when the line is not one.
pub fn csv_record(line: &[u8]) -> Option<csv::StringRecord> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    reader.records().next()?.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(format: Format, chunk: usize, pieces: &[&[u8]]) -> (Vec<Block>, Block, Framer) {
        framed(Framer::new(format, chunk, usize::MAX), pieces)
    }

    fn framed(mut framer: Framer, pieces: &[&[u8]]) -> (Vec<Block>, Block, Framer) {
        let mut blocks = Vec::new();
        for piece in pieces {
            blocks.extend(framer.push(piece).expect("frames"));
        }
        blocks.extend(framer.finish().expect("frames"));
        let rest = std::mem::take(&mut framer.block);
        (blocks, rest, framer)
    }

    #[test]
    fn lines_split_across_pieces_come_out_whole_in_blocks_of_the_chunk_size() {
        let (blocks, rest, framer) = frame(
            Format::Ndjson,
            2,
            &[b"{\"a\":1}\n{\"a\"", b":2}\n{\"a\":3}\n{\"a\":4"],
        );
        assert_eq!(
            blocks,
            vec![
                Block {
                    text: b"{\"a\":1}\n{\"a\":2}\n".to_vec(),
                    first_line: 1,
                    last_line: 2
                },
                Block {
                    text: b"{\"a\":3}\n{\"a\":4\n".to_vec(),
                    first_line: 3,
                    last_line: 4
                },
            ]
        );
        assert_eq!(rest.text, b"");
        assert_eq!(rest.first_line, 5);
        assert_eq!(framer.lines_read(), 4);
    }

    #[test]
    fn a_block_also_ends_at_its_byte_limit_whatever_its_lines() {
        // Lines of 6 bytes with their newline, blocks of at most 100 lines but 12 bytes: two lines a block.
        let (blocks, rest, _) = framed(
            Framer::new(Format::Ndjson, 100, 12),
            &[b"aaaaa\nbbbbb\nccccc\nddddd\neeeee\n"],
        );
        let lines: Vec<_> = blocks.iter().map(|b| (b.first_line, b.last_line)).collect();
        assert_eq!(lines, [(1, 2), (3, 4)]);
        assert_eq!(rest.text, b"eeeee\n");
    }

    #[test]
    fn a_last_line_without_its_newline_is_kept_and_a_partial_block_is_left_for_the_end() {
        let (blocks, rest, _) = frame(Format::Ndjson, 10, &[b"one\r\ntwo"]);
        assert!(blocks.is_empty());
        assert_eq!(rest.text, b"one\r\ntwo\n", "CR is the parser's to strip");
        assert_eq!((rest.first_line, rest.last_line), (1, 2));
    }

    #[test]
    fn a_csv_header_is_read_once_and_numbers_the_rows_after_it() {
        let (blocks, rest, framer) = frame(Format::Csv, 1, &[b"id,result\r\n1,neg", b"ative\n"]);
        let headers = framer.headers().expect("a header");
        assert_eq!(headers.iter().collect::<Vec<_>>(), ["id", "result"]);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].text, b"1,negative\n");
        assert_eq!((blocks[0].first_line, blocks[0].last_line), (2, 2));
        assert_eq!((rest.first_line, rest.last_line), (3, 2), "nothing left");
    }

    #[test]
    fn a_csv_body_must_start_with_its_header_line() {
        let mut framer = Framer::new(Format::Csv, 10, usize::MAX);
        assert_eq!(
            framer.push(b"\nid,result\n"),
            Err(FramingError::MissingCsvHeader)
        );
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_with_its_number() {
        let mut framer = Framer::new(Format::Ndjson, 10, usize::MAX);
        assert!(framer.push(b"short\n").expect("frames").is_empty());
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        assert_eq!(framer.push(&long), Err(FramingError::LineTooLong(2)));
    }
}
