/* A malloc-heavy whole program for the native tier's end-to-end benchmark (bench_programs.py).
 *
 * Three phases, each allocating and freeing many blocks of varied sizes through glibc's malloc:
 * a chained hash table of string keys built, probed, half deleted and torn down; an unbalanced
 * binary search tree of random keys built and freed; and a ring of live blocks of random sizes
 * (1 to 2000 bytes) replaced at random, with realloc. Everything feeds one checksum, printed at
 * the end, so any difference from qemu-riscv64 shows. ROUNDS (argv[1]) scales the work.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint32_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 16);
}

static uint64_t checksum;

static void mix(uint64_t value) { checksum = (checksum ^ value) * 0x100000001B3ull; }

/* ---------------------------------------------------------------- hash table of strings */

struct entry {
    struct entry *next;
    char *key;
    uint64_t value;
};

#define BUCKETS 4096

static uint32_t hash(const char *s) {
    uint32_t h = 2166136261u;
    while (*s) h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

static void hash_phase(int keys) {
    struct entry **table = calloc(BUCKETS, sizeof *table);
    char buf[48];
    for (int i = 0; i < keys; i++) {
        int len = snprintf(buf, sizeof buf, "key-%d-%u", i, next_random() % 100000);
        struct entry *e = malloc(sizeof *e);
        e->key = malloc((size_t)len + 1);
        memcpy(e->key, buf, (size_t)len + 1);
        e->value = (uint64_t)i * 2654435761u;
        uint32_t b = hash(e->key) % BUCKETS;
        e->next = table[b];
        table[b] = e;
    }
    uint64_t found = 0;
    for (int b = 0; b < BUCKETS; b++)
        for (struct entry *e = table[b]; e; e = e->next)
            if (hash(e->key) % BUCKETS == (uint32_t)b) found += e->value;
    mix(found);
    for (int b = 0; b < BUCKETS; b += 2) {  /* delete every other bucket's chain */
        struct entry *e = table[b];
        while (e) {
            struct entry *n = e->next;
            free(e->key);
            free(e);
            e = n;
        }
        table[b] = NULL;
    }
    for (int b = 0; b < BUCKETS; b++) {
        struct entry *e = table[b];
        uint64_t chain = 0;
        while (e) {
            struct entry *n = e->next;
            chain += strlen(e->key);
            free(e->key);
            free(e);
            e = n;
        }
        mix(chain);
    }
    free(table);
}

/* ---------------------------------------------------------------- binary search tree */

struct node {
    struct node *left, *right;
    uint32_t key;
    char payload[];
};

static struct node *insert(struct node *root, uint32_t key) {
    struct node **at = &root;
    while (*at) at = key < (*at)->key ? &(*at)->left : &(*at)->right;
    size_t extra = key % 64;
    struct node *n = malloc(sizeof *n + extra);
    n->left = n->right = NULL;
    n->key = key;
    memset(n->payload, (int)(key & 0xFF), extra);
    *at = n;
    return root;
}

static uint64_t walk_and_free(struct node *n, int depth) {
    if (!n) return 0;
    uint64_t sum = n->key * (uint64_t)(depth + 1);
    sum += walk_and_free(n->left, depth + 1);
    sum += walk_and_free(n->right, depth + 1);
    free(n);
    return sum;
}

static void tree_phase(int nodes) {
    struct node *root = NULL;
    for (int i = 0; i < nodes; i++) root = insert(root, next_random());
    mix(walk_and_free(root, 0));
}

/* ---------------------------------------------------------------- a ring of random blocks */

#define SLOTS 1024

static void churn_phase(int steps) {
    unsigned char *slot[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    for (int i = 0; i < steps; i++) {
        uint32_t r = next_random();
        int k = (int)(r % SLOTS);
        size_t want = 1 + (r >> 10) % 2000;
        if (slot[k] && (r & 0x300) == 0) {
            slot[k] = realloc(slot[k], want);
        } else {
            if (slot[k]) mix(slot[k][0] + size[k]);
            free(slot[k]);
            slot[k] = malloc(want);
        }
        size[k] = want;
        slot[k][0] = (unsigned char)r;
        slot[k][want - 1] = (unsigned char)(r >> 8);
    }
    for (int k = 0; k < SLOTS; k++) {
        if (slot[k]) mix(slot[k][0] ^ slot[k][size[k] - 1]);
        free(slot[k]);
    }
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    for (int round = 0; round < rounds; round++) {
        hash_phase(20000);
        tree_phase(20000);
        churn_phase(100000);
    }
    printf("malloc_heavy: %d rounds, checksum %016llx\n", rounds, (unsigned long long)checksum);
    return 0;
}
