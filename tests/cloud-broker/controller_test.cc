// The region controller against a real etcd (tests follow).
