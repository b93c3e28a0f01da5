/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Small socket helpers shared by the tcp and rdma backends. */
#ifndef COLO_COMMON_NET_H
#define COLO_COMMON_NET_H

#include <netdb.h>
#include <stdint.h>

/* Connections beyond the handshakes the secondary runs at once wait here. */
#define COLO_LISTEN_BACKLOG 16

/* getaddrinfo for a stream socket; what names the backend ("tcp", "rdma")
 * in the error message. */
int colo_resolve(const char *what, const char *host, uint16_t port, int flags,
                 struct addrinfo **res);
/* O_NONBLOCK on fd: 0 or a negative errno. */
int colo_set_nonblock(int fd);

#endif
