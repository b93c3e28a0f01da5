/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>

#include "common/error.h"
#include "common/net.h"

int colo_resolve(const char *what, const char *host, uint16_t port, int flags,
                 struct addrinfo **res)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = flags};
    char portstr[8];
    int ret;

    snprintf(portstr, sizeof(portstr), "%u", port);
    ret = getaddrinfo(host, portstr, &hints, res);
    if (ret)
        return colo_err(-EHOSTUNREACH, "%s: cannot resolve %s: %s (expected a host name, "
                        "IPv4 or IPv6 address)", what, host ? host : "(any)", gai_strerror(ret));
    return 0;
}

int colo_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}
