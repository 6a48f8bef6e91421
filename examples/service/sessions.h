/* sessions.h - the leaky library's interface. */
#ifndef SESSIONS_H
#define SESSIONS_H
typedef struct session session;
session *session_new(void);
void session_request(session *s, const char *headers);
#endif
