/*
 * test_fetchloop.c - plain-C tests of the fetch engine
 * (csrc/wire/fetchloop.h): its lifecycle under threads (run under ASan +
 * UBSan by tests/test_fetchloop_c.py).  Its answer decoding is tested
 * with the Fetch codec (test_fetch_codec.c).
 */
#include "buf.h"
#include "fetchloop.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pkc_test.h"

#define TOPIC "topic-a"

#define STOPPERS 4

typedef struct {
    pkc_fl *fl;
    pthread_barrier_t *go;
    int starts;  /* also call pkc_fl_start (mixed start/stop) */
    int rc;
} stopper_arg;

static void *
stopper_main(void *p)
{
    stopper_arg *a = p;

    pthread_barrier_wait(a->go);
    if (a->starts)
        a->rc = pkc_fl_start(a->fl);
    pkc_fl_stop(a->fl);
    return NULL;
}

/* Several threads stopping one engine at once (a signal handler's thread
 * and a `finally`, say): each returns, the thread is joined once, and the
 * engine starts again afterwards.  Repeated so the interleavings vary;
 * under TSan/ASan a double join or a use after free shows. */
static void
test_concurrent_stop_and_start(void)
{
    pkc_fl_config cfg;
    pkc_fl *fl = NULL;

    pkc_fl_config_default(&cfg);
    cfg.topic = TOPIC;
    cfg.topic_len = strlen(TOPIC);
    CHECK_EQ(pkc_fl_new(&cfg, &fl), PKC_OK);
    CHECK_EQ(pkc_fl_add_partition(fl, 0), PKC_OK);
    for (int round = 0; round < 200; round++) {
        pthread_t th[STOPPERS];
        stopper_arg args[STOPPERS];
        pthread_barrier_t go;

        CHECK_EQ(pkc_fl_start(fl), PKC_OK);
        CHECK_EQ(pkc_fl_start(fl), PKC_OK); /* already running: no-op */
        CHECK_EQ(pkc_fl_running(fl), 1);
        pthread_barrier_init(&go, NULL, STOPPERS);
        for (int i = 0; i < STOPPERS; i++) {
            args[i].fl = fl;
            args[i].go = &go;
            args[i].starts = (round % 2) && i == 0;
            args[i].rc = PKC_OK;
            CHECK_EQ(pthread_create(&th[i], NULL, stopper_main, &args[i]), 0);
        }
        for (int i = 0; i < STOPPERS; i++) {
            pthread_join(th[i], NULL);
            CHECK_EQ(args[i].rc, PKC_OK);
        }
        pthread_barrier_destroy(&go);
        /* The starter may have started it again after a stop: end with
         * one more stop, then it must be down. */
        pkc_fl_stop(fl);
        CHECK_EQ(pkc_fl_running(fl), 0);
        CHECK_EQ(pkc_fl_wait(fl, 0), -1);
    }
    pkc_fl_free(fl);
}

int
main(void)
{
    RUN(test_concurrent_stop_and_start);
    return pkc_test_summary();
}
