#!/bin/sh
# PID 1 of a guest without systemd: the file systems a distribution's init would mount, cgroup v2
# only, then the checks, then power off.
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
hostname tfctl-vm
ip link set lo up
/opt/tfctl/guest-checks.sh init > /dev/ttyS0 2>&1
sync
echo o > /proc/sysrq-trigger
sleep 10
