// The `cairn` binary: one executable, subcommands for every role.
int main() { return 0; }
