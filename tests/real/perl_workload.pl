# Perl workload for tests/run_real_programs.sh (hashes, arrays, strings, regexes, sort);
# deterministic output, compared with and without the preloaded allocator.
use strict;
use warnings;
use Digest::MD5 qw(md5_hex);

my %h;
for my $i (0 .. 199_999) {
    $h{"k$i-" . ($i * 7919 % 1000)} = [$i, "v" x ($i % 20)];
}
delete $h{"k$_-" . ($_ * 7919 % 1000)} for grep { $_ % 3 == 0 } 0 .. 199_999;
my @keys = sort keys %h;
my $total = 0;
$total += $h{$_}[0] for @keys;
print "hash: ", scalar(@keys), " $total $keys[0] $keys[-1]\n";

my @words;
for my $w (1 .. 100_000) {
    push @words, join '', map { chr(97 + ($w * 31 + $_ * $_ * 7) % 26) } 1 .. ($w % 15 + 1);
}
my %count;
$count{substr($_, 0, 2)}++ for @words;
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 4];
print "words: ", join(' ', map { "$_=$count{$_}" } @top), "\n";

my $text = join "\n", map { "line $_: " . ("abc" x ($_ % 10)) . " end" } 1 .. 50_000;
my @m = ($text =~ /line (\d*7): (?:abc){7} end/g);
(my $t2 = $text) =~ s/abc/XY/g;
print "regex: ", scalar(@m), " ", length($t2), " ", md5_hex($t2), "\n";

my @nums = sort { $a <=> $b } map { ($_ * 2654435761) % 1_000_003 } 1 .. 300_000;
print "sort: $nums[0] $nums[150_000] $nums[-1]\n";
