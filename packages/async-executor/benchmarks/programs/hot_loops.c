/* A hot-loop whole program for the native tier's end-to-end benchmark (bench_programs.py).
 *
 * Integer work of the kind CoreMark measures, written for this repository: a linked list sorted
 * by merge sort and searched, an integer matrix multiplied and transformed, a byte-stream state
 * machine scanning generated text, and a CRC-16 over everything; one checksum printed at the
 * end. ITERATIONS (argv[1]) scales the work.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t seed = 12345;

static uint32_t lcg(void) {
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
}

static uint16_t crc16(uint16_t crc, uint32_t value, int bytes) {
    for (int b = 0; b < bytes; b++) {
        crc ^= (uint8_t)(value >> (8 * b));
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xA001 & -(crc & 1));
    }
    return crc;
}

/* ---------------------------------------------------------------- list */

struct item {
    struct item *next;
    int32_t key;
    int32_t data;
};

static struct item *merge(struct item *a, struct item *b) {
    struct item head, *tail = &head;
    while (a && b) {
        if (a->key <= b->key) {
            tail->next = a;
            a = a->next;
        } else {
            tail->next = b;
            b = b->next;
        }
        tail = tail->next;
    }
    tail->next = a ? a : b;
    return head.next;
}

static struct item *sort(struct item *list) {
    if (!list || !list->next) return list;
    struct item *slow = list, *fast = list->next;
    while (fast && fast->next) {
        slow = slow->next;
        fast = fast->next->next;
    }
    struct item *back = slow->next;
    slow->next = NULL;
    return merge(sort(list), sort(back));
}

#define ITEMS 512

static uint16_t list_work(struct item *pool, uint16_t crc) {
    for (int i = 0; i < ITEMS; i++) {
        pool[i].key = (int32_t)(lcg() % 10000) - 5000;
        pool[i].data = i;
        pool[i].next = i + 1 < ITEMS ? &pool[i + 1] : NULL;
    }
    struct item *list = sort(pool);
    int32_t found = 0;
    for (int q = 0; q < 64; q++) {
        int32_t want = (int32_t)(lcg() % 10000) - 5000;
        for (struct item *p = list; p; p = p->next)
            if (p->key >= want) {
                found += p->data;
                break;
            }
    }
    return crc16(crc, (uint32_t)found, 4);
}

/* ---------------------------------------------------------------- matrix */

#define N 24

static uint16_t matrix_work(int32_t a[N][N], int32_t b[N][N], int32_t c[N][N], uint16_t crc) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            a[i][j] = (int32_t)(lcg() & 0xFFFF) - 0x8000;
            b[i][j] = (int32_t)(lcg() & 0xFF);
        }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            int32_t sum = 0;
            for (int k = 0; k < N; k++) sum += a[i][k] * b[k][j];
            c[i][j] = sum;
        }
    int64_t acc = 0;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) acc += (c[i][j] >> 3) ^ (c[i][j] & 0x7F);
    return crc16(crc, (uint32_t)acc, 4);
}

/* ---------------------------------------------------------------- state machine */

enum { START, INT, FLOAT, EXP, SCIENTIFIC, INVALID, STATES };

static uint16_t state_work(char *text, int len, uint16_t crc) {
    static const char alphabet[] = "0123456789+-.eE, ab";
    for (int i = 0; i < len; i++) text[i] = alphabet[lcg() % (sizeof alphabet - 1)];
    uint32_t counts[STATES] = {0};
    int state = START;
    for (int i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == ',') {
            counts[state]++;
            state = START;
            continue;
        }
        switch (state) {
        case START:
            state = (ch >= '0' && ch <= '9') ? INT : (ch == '+' || ch == '-') ? INT
                  : ch == '.' ? FLOAT : INVALID;
            break;
        case INT:
            state = ch == '.' ? FLOAT : (ch >= '0' && ch <= '9') ? INT : INVALID;
            break;
        case FLOAT:
            state = (ch == 'e' || ch == 'E') ? EXP : (ch >= '0' && ch <= '9') ? FLOAT : INVALID;
            break;
        case EXP:
            state = (ch >= '0' && ch <= '9') || ch == '+' || ch == '-' ? SCIENTIFIC : INVALID;
            break;
        case SCIENTIFIC:
            state = (ch >= '0' && ch <= '9') ? SCIENTIFIC : INVALID;
            break;
        default:
            break;
        }
    }
    for (int s = 0; s < STATES; s++) crc = crc16(crc, counts[s], 2);
    return crc;
}

int main(int argc, char **argv) {
    int iterations = argc > 1 ? atoi(argv[1]) : 200;
    struct item *pool = malloc(ITEMS * sizeof *pool);
    int32_t(*a)[N] = malloc(sizeof(int32_t[N][N]));
    int32_t(*b)[N] = malloc(sizeof(int32_t[N][N]));
    int32_t(*c)[N] = malloc(sizeof(int32_t[N][N]));
    char *text = malloc(4096);
    uint16_t crc = 0;
    for (int it = 0; it < iterations; it++) {
        crc = list_work(pool, crc);
        crc = matrix_work(a, b, c, crc);
        crc = state_work(text, 4096, crc);
    }
    printf("hot_loops: %d iterations, crc %04x\n", iterations, crc);
    return 0;
}
