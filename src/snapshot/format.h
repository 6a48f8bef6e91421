/*
 * format.h - the snapshot file format of docs/FORMAT.md, shared by the writer (file_write.c), the
 * reader (file_read.c), the unit tests and the fuzzer: the constants that fix the layout, CRC-32,
 * LEB128 varints, and the in-memory entry points.
 *
 * Layout in one breath: a 12-byte header (magic, u32 version), then sections, each a 16-byte
 * header (4-byte type, u64 payload length, CRC-32 of type, length and payload) and its payload;
 * the last section is 'END '.  Integers inside payloads are unsigned LEB128 varints.  Every fixed
 * width integer is little-endian.
 */
#ifndef HS_FORMAT_H
#define HS_FORMAT_H

#include "snapshot.h"

#define HS_FILE_MAGIC "\x89HSNAP\r\n"       /* 8 bytes, no NUL */
#define HS_FILE_MAGIC_LEN 8
#define HS_FILE_VERSION 1u                  /* the newest version this code reads and writes */
#define HS_FILE_HEADER_LEN 12               /* magic + u32 version */
#define HS_SECTION_HEADER_LEN 16            /* u32 type + u64 length + u32 crc */
#define HS_VARINT_MAX 10                    /* bytes of the longest varint (a u64) */

/* Section types: four ASCII bytes, read as a little-endian u32. */
#define HS_FOURCC(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
#define HS_SEC_META       HS_FOURCC('M', 'E', 'T', 'A')
#define HS_SEC_STRINGS    HS_FOURCC('S', 'T', 'R', 'S')
#define HS_SEC_FRAMES     HS_FOURCC('F', 'R', 'M', 'S')
#define HS_SEC_TRACEBACKS HS_FOURCC('T', 'B', 'K', 'S')
#define HS_SEC_TRACES     HS_FOURCC('T', 'R', 'C', 'S')
#define HS_SEC_END        HS_FOURCC('E', 'N', 'D', ' ')

/* META flags. */
#define HS_META_TRACER_OOM 1u
#define HS_META_TRIMMED    2u

/* CRC-32 of zlib, PNG and gzip (reflected polynomial 0xEDB88320, initial and final xor
 * 0xFFFFFFFF).  Chains like zlib's crc32(): crc32(crc32(0, a), b) == crc32(0, a || b). */
HS_HIDDEN uint32_t hs_crc32(uint32_t crc, const void *buf, size_t n);

/* Writes v as an unsigned LEB128 varint at p, which has room for HS_VARINT_MAX bytes; returns the
 * number of bytes written (1..10). */
static inline size_t hs_varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* Reads one varint from [*pp, end) into *v and advances *pp.  0 on success; -1 when the bytes
 * end inside the varint; -2 when it does not fit in 64 bits (more than 10 bytes, or a 10th byte
 * above 1).  Non-minimal encodings of at most 10 bytes are accepted.  *pp is unchanged on error. */
static inline int hs_varint_get(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
    const unsigned char *p = *pp;
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p == end)
            return -1;
        unsigned char b = *p++;
        if (shift == 63 && b > 1)
            return -2;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *v = r;
            *pp = p;
            return 0;
        }
    }
    return -2;
}

/* Signed values (pid, ppid) are zigzag-encoded before the varint: 0, -1, 1, -2 ... -> 0, 1, 2, 3. */
static inline uint64_t hs_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t hs_unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

static inline void hs_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void hs_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t hs_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t hs_get_le64(const unsigned char *p)
{
    return (uint64_t)hs_get_le32(p) | (uint64_t)hs_get_le32(p + 4) << 32;
}

/* Encodes s as a complete snapshot file in memory.  On success returns 0 and sets *buf (free it
 * with hs_free) and *len.  Returns -EINVAL for a NULL argument, -ENOMEM, or -EOVERFLOW when a
 * table would need more than 2^32 - 1 entries.  Allocates a few arrays per call (none per
 * trace); the result is about the file's size. */
HS_HIDDEN int hs_snapshot_encode(const hs_snapshot *s, unsigned char **buf, size_t *len);

/* Parses a complete snapshot file held in [buf, buf + len).  Returns a new snapshot, or NULL with
 * "<name>: <what is wrong>" in errbuf (if errbuf is not NULL and errlen > 0) and errno set to
 * EINVAL (not a snapshot, or a corrupt one), ENOTSUP (a newer format version) or ENOMEM.  name
 * (NULL: "<memory>") only names the input in messages.  Never reads outside the buffer, and
 * allocates at most a small multiple of len whatever the bytes say. */
HS_HIDDEN hs_snapshot *hs_snapshot_load_mem(const void *buf, size_t len, const char *name,
                                            char *errbuf, size_t errlen);

#endif
