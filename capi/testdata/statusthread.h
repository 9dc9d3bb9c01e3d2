/*
 * statusthread.h - which thread libavc runs the status handlers on, for
 * the C test programs that check their callbacks come on that thread: a
 * status handler calls note_status_thread(), a callback asks
 * on_status_thread().
 */
#ifndef AVC_TESTDATA_STATUSTHREAD_H
#define AVC_TESTDATA_STATUSTHREAD_H

#include <pthread.h>

static pthread_mutex_t status_thread_lock = PTHREAD_MUTEX_INITIALIZER;
static int status_thread_known;
static pthread_t status_thread_id;

/* Notes the caller's thread as the status handlers' the first time;
 * returns whether the caller runs on that thread. */
static inline int note_status_thread(void)
{
    int same = 1;
    pthread_mutex_lock(&status_thread_lock);
    if (!status_thread_known)
    {
        status_thread_known = 1;
        status_thread_id = pthread_self();
    }
    else
    {
        same = pthread_equal(status_thread_id, pthread_self()) != 0;
    }
    pthread_mutex_unlock(&status_thread_lock);
    return same;
}

/* Returns whether a status handler has noted its thread. */
static inline int status_thread_noted(void)
{
    int known;
    pthread_mutex_lock(&status_thread_lock);
    known = status_thread_known;
    pthread_mutex_unlock(&status_thread_lock);
    return known;
}

/* Returns whether the caller runs on the thread a status handler noted. */
static inline int on_status_thread(void)
{
    int same;
    pthread_mutex_lock(&status_thread_lock);
    same = status_thread_known && pthread_equal(status_thread_id, pthread_self());
    pthread_mutex_unlock(&status_thread_lock);
    return same;
}

#endif
