/*
 * probe.c - the speed-of-light probe for fastpcap.
 *
 * What is the least a program must spend to turn a classic pcap into per-bucket counters?
 * This is plain C99 with no dependencies: mmap the whole file, walk the records (streaming
 * each 64 KiB into cache just ahead of the walk, see SWEEP), decode Ethernet/IPv4/TCP/UDP
 * exactly as rule 2 of the contract (docs/data-model.md) says, and add every
 * packet to its bucket (sections 3-4: running-max bucket rule, bridge 10.200.0.1, the
 * 3600 s gap cap by default) in a growing array of buckets.  It does NOT count distinct
 * destination IPs/ports and writes no JSON, so it is a lower bound for fastpcap, not a
 * competitor.  The totals it prints are summed from the bucket array at the end and must
 * equal the sums of the corresponding fields of fastpcap's rows (benchmarks/test_bench.py
 * checks that).
 *
 *     cc -O2 -o benchmarks/.cache/probe benchmarks/probe.c
 *     probe FILE [BUCKET_MS [MAX_GAP_S|none]]
 *
 * Prints one JSON line on stdout; "elapsed_s" is measured inside with clock_gettime from
 * before open() to after the totals (process start-up excluded).  Exit status 2, with one
 * line on stderr, for a file that cannot be read, is not a classic pcap, or holds a record
 * longer than 262144 bytes.  A partial record at the end ends the walk (not an error).
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GLOBAL_HDR 24
#define RECORD_HDR 16
#define MAX_CAPLEN 262144u
#define BRIDGE_IP 0x0AC80001u /* 10.200.0.1 */
#define LINKTYPE_ETHERNET 1u

typedef struct {
    int64_t pkts_in, pkts_out, bytes_in, bytes_out;
    int64_t syn, fin, rst, udp, tcp, dns, new_flows;
} bucket_t;

/* The walk is a chain of dependent loads: each record's address comes from the previous
 * record's length, so walking a mapping that is not in cache waits on memory latency once
 * per record.  Reading one byte per 64-byte line of the next SWEEP bytes in a plain linear
 * loop first (independent loads the hardware prefetcher streams) makes it bandwidth-bound
 * instead: about twice as fast on the synthetic traffic.  fastpcap gets the same effect
 * from read() into a small reused block. */
#define SWEEP (64 * 1024)

static const char *prog = "probe";
static volatile unsigned sink_out; /* keeps the sweep's loads from being optimised away */

static void die(const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s: ", prog, path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static inline uint32_t rd32le(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t rd32be(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* A record-header field in the capture's byte order. */
static inline uint32_t rd32(const unsigned char *p, int swapped) {
    return swapped ? rd32be(p) : rd32le(p);
}

static inline uint32_t rd16be(const unsigned char *p) {
    return (uint32_t)p[0] << 8 | (uint32_t)p[1];
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t parse_int(const char *text, const char *what, long long least) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < least || v > INT64_MAX / 1000000000) {
        fprintf(stderr, "%s: %s must be an integer from %lld, not '%s'\n", prog, what, least, text);
        exit(2);
    }
    return (int64_t)v;
}

/* The bucket array: emitted buckets in order, the last one open. */
static bucket_t *buckets;
static size_t nbuckets, cap;

static bucket_t *push_empty(size_t count) {
    if (nbuckets + count > cap) {
        size_t want = cap ? cap : 1024;
        while (want < nbuckets + count) want *= 2;
        bucket_t *grown = realloc(buckets, want * sizeof *buckets);
        if (!grown) {
            fprintf(stderr, "%s: out of memory for %zu buckets\n", prog, want);
            exit(2);
        }
        buckets = grown;
        cap = want;
    }
    memset(buckets + nbuckets, 0, count * sizeof *buckets);
    nbuckets += count;
    return buckets + nbuckets - 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s FILE [BUCKET_MS [MAX_GAP_S|none]]\n", prog);
        return 2;
    }
    const char *path = argv[1];
    const int64_t bucket_ns = (argc > 2 ? parse_int(argv[2], "BUCKET_MS", 1) : 100) * 1000000;
    /* The gap cap (docs/data-model.md, "Gap cap"): a run of more than max_gap_buckets empty buckets
     * (k * bucket_ns <= max_gap_ns  <=>  k <= max_gap_ns / bucket_ns) is not written. */
    int64_t max_gap_buckets = INT64_MAX;
    if (argc > 3 && strcmp(argv[3], "none") != 0)
        max_gap_buckets = parse_int(argv[3], "MAX_GAP_S", 0) * 1000000000 / bucket_ns;
    else if (argc <= 3)
        max_gap_buckets = (int64_t)3600 * 1000000000 / bucket_ns;

    double t_start = now_s();

    int fd = open(path, O_RDONLY);
    if (fd < 0) die(path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) die(path, "cannot stat: %s", strerror(errno));
    size_t size = (size_t)st.st_size;
    const unsigned char *data = NULL;
    if (size > 0) {
        data = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (data == MAP_FAILED) die(path, "cannot mmap: %s", strerror(errno));
        madvise((void *)data, size, MADV_SEQUENTIAL);
    }

    int64_t packets = 0, bytes = 0;
    unsigned sink = 0;
    size_t off = 0; /* where the walk stopped: the end of the last complete record */
    if (size >= 4) {
        uint32_t magic = rd32le(data);
        int swapped, nsec;
        if (magic == 0xA1B2C3D4u) { swapped = 0; nsec = 0; }
        else if (magic == 0xA1B23C4Du) { swapped = 0; nsec = 1; }
        else if (magic == 0xD4C3B2A1u) { swapped = 1; nsec = 0; }
        else if (magic == 0x4D3CB2A1u) { swapped = 1; nsec = 1; }
        else die(path, "not a pcap capture (unknown magic 0x%08" PRIx32 ")", magic);
        const int64_t frac_mul = nsec ? 1 : 1000;

        if (size >= GLOBAL_HDR) {
            off = GLOBAL_HDR;
            const int ethernet = (rd32(data + 20, swapped) & 0x03FFFFFFu) == LINKTYPE_ETHERNET;
            int64_t origin = 0, open_idx = -1, t_max = INT64_MIN;
            bucket_t *b = NULL;
            size_t swept = off;

            while (size - off >= RECORD_HDR) {
                if (off >= swept) { /* stream the next window into cache (see SWEEP) */
                    size_t end = size - swept > SWEEP ? swept + SWEEP : size;
                    for (size_t i = swept; i < end; i += 64) sink += data[i];
                    swept = end;
                }
                const unsigned char *h = data + off;
                uint32_t incl = rd32(h + 8, swapped);
                if (incl > MAX_CAPLEN)
                    die(path, "record at byte offset %zu claims %" PRIu32 " captured bytes, more than %u",
                        off, incl, MAX_CAPLEN);
                if (size - off - RECORD_HDR < incl) break; /* partial tail: a capture still being written */
                const int64_t t = (int64_t)rd32(h, swapped) * 1000000000 + (int64_t)rd32(h + 4, swapped) * frac_mul;
                const unsigned char *f = h + RECORD_HDR;
                off += RECORD_HDR + incl;

                /* Bucket: the one holding the running maximum of t (docs/data-model.md, rule 4). */
                if (t > t_max) {
                    t_max = t;
                    if (open_idx < 0) origin = t - t % bucket_ns;
                    int64_t idx = (t_max - origin) / bucket_ns;
                    if (idx != open_idx) {
                        int64_t gap = idx - open_idx - 1;
                        if (open_idx >= 0 && gap > 0 && gap <= max_gap_buckets)
                            push_empty((size_t)gap);
                        b = push_empty(1);
                        open_idx = idx;
                    }
                }

                /* Decode (docs/data-model.md, rule 2). */
                int out = 0, has_ports = 0;
                uint32_t proto = 256, flags = 0, dport = 0;
                if (ethernet && incl >= 14 && rd16be(f + 12) == 0x0800) {
                    const unsigned char *ip = f + 14;
                    uint32_t iplen = incl - 14;
                    uint32_t ihl = (uint32_t)(ip[0] & 0x0F) * 4;
                    if (iplen >= 20 && ihl >= 20 && iplen >= ihl) {
                        proto = ip[9];
                        out = rd32be(ip + 12) == BRIDGE_IP;
                        const unsigned char *l4 = ip + ihl;
                        uint32_t l4len = iplen - ihl;
                        if (proto == 6 && l4len >= 20) {
                            dport = rd16be(l4 + 2);
                            flags = rd16be(l4 + 12) & 0x3F;
                            has_ports = 1;
                        } else if (proto == 17 && l4len >= 8) {
                            dport = rd16be(l4 + 2);
                            has_ports = 1;
                        }
                    }
                }

                /* Contribution (docs/data-model.md, rule 3). */
                if (out) { b->pkts_out++; b->bytes_out += incl; }
                else { b->pkts_in++; b->bytes_in += incl; }
                if (proto == 6) {
                    b->tcp++;
                    if (flags & 0x02) {
                        b->syn++;
                        if (!(flags & 0x10)) b->new_flows++;
                    }
                    if (flags & 0x01) b->fin++;
                    if (flags & 0x04) b->rst++;
                } else if (proto == 17) {
                    b->udp++;
                    if (has_ports && dport == 53) b->dns++;
                }
            }
        }
    } else if (size > 0) {
        /* Fewer than 4 bytes: a capture that just started if they begin a valid magic. */
        static const unsigned char magics[4][4] = {
            {0xD4, 0xC3, 0xB2, 0xA1}, {0x4D, 0x3C, 0xB2, 0xA1},
            {0xA1, 0xB2, 0xC3, 0xD4}, {0xA1, 0xB2, 0x3C, 0x4D}};
        int ok = 0;
        for (int i = 0; i < 4; i++) ok |= memcmp(magics[i], data, size) == 0;
        if (!ok) die(path, "not a pcap capture (%zu bytes, not the start of a magic)", size);
    }

    /* Totals, summed over the bucket array (so the per-bucket work cannot be skipped). */
    bucket_t tot;
    memset(&tot, 0, sizeof tot);
    for (size_t i = 0; i < nbuckets; i++) {
        const bucket_t *b = buckets + i;
        tot.pkts_in += b->pkts_in; tot.pkts_out += b->pkts_out;
        tot.bytes_in += b->bytes_in; tot.bytes_out += b->bytes_out;
        tot.syn += b->syn; tot.fin += b->fin; tot.rst += b->rst;
        tot.udp += b->udp; tot.tcp += b->tcp; tot.dns += b->dns; tot.new_flows += b->new_flows;
    }
    packets = tot.pkts_in + tot.pkts_out;
    bytes = tot.bytes_in + tot.bytes_out;
    double elapsed = now_s() - t_start;
    sink_out = sink;

    printf("{\"file_bytes\": %zu, \"walked_bytes\": %zu, \"packets\": %" PRId64 ", \"bytes\": %" PRId64
           ", \"buckets\": %zu, \"pkts_in\": %" PRId64 ", \"pkts_out\": %" PRId64
           ", \"bytes_in\": %" PRId64 ", \"bytes_out\": %" PRId64 ", \"syn_count\": %" PRId64
           ", \"fin_count\": %" PRId64 ", \"rst_count\": %" PRId64 ", \"udp_count\": %" PRId64
           ", \"tcp_count\": %" PRId64 ", \"dns_query_count\": %" PRId64
           ", \"tcp_new_flows\": %" PRId64 ", \"elapsed_s\": %.6f}\n",
           size, off, packets, bytes, nbuckets, tot.pkts_in, tot.pkts_out, tot.bytes_in,
           tot.bytes_out, tot.syn, tot.fin, tot.rst, tot.udp, tot.tcp, tot.dns, tot.new_flows,
           elapsed);
    if (data) munmap((void *)data, size);
    close(fd);
    free(buckets);
    return 0;
}
